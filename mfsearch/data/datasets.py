"""`load_dataset`: every dataset by name, fully in memory as uint8 tensors."""
from __future__ import annotations

import os
from pathlib import Path

from .cifar import CIFAR_FOLDERS, load_cifar
from .core import DataError, InMemoryData
from .folders import DEFAULT_TEST_SPLIT, load_image_tree
from .shapes import HARD, HARD_TRAIN, make_shapes
from .synthetic import make_synthetic

DATASETS = ("shapes", "shapes_hard", "synthetic", "cifar10", "cifar100", "imagefolder")
DEFAULT_DATASET = "shapes"   # built in and offline: a fresh machine's search needs nothing else
# What the built-in datasets' rankings are known to agree with, measured under the default
# protocol by `python search.py --experiment experiments/builtin_fidelity.yaml --size full`
# (docs/results/builtin_fidelity/report.md; tests/test_data.py holds this text to that report).
BUILT_IN_AGREEMENT = {
    "shapes": "on 12 random architectures under 150M, two seeds rank alike at Spearman 0.76 and the ranking "
              "agrees with CIFAR-10's at Spearman 0.94; 1 of 12 end within 3 points of chance "
              "(docs/results/builtin_fidelity)",
    "synthetic": "a relation task most architectures do not learn in a short run: its ranking is a lottery "
                 "(docs/data.md); prefer shapes",
}
DEFAULT_DATA_ROOT = Path("~/.cache/mfsearch/data")
DEFAULT_CACHE_DIR = Path("~/.cache/mfsearch/datasets")


def load_dataset(name: str, root: str | os.PathLike | None = None, download: bool = False, seed: int = 0,
                 cache_dir: str | os.PathLike | None = None, *, image_size: int | None = None,
                 limit_per_class: int | None = None, synthetic_train: int = 20_000,
                 synthetic_test: int = 4_000, num_workers: int = 2,
                 test_split: float = DEFAULT_TEST_SPLIT) -> InMemoryData:
    """Load a dataset fully into memory as uint8 tensors.

    `seed` affects `synthetic`, `shapes` and the split of a flat image tree; `image_size` is
    the stored side length (None: 32 for synthetic and CIFAR, the common size of an
    image tree, or 64 when its sizes differ); `limit_per_class` keeps the first N
    images of every class per split (of a flat tree: per class folder, before the
    split), for cheap smoke tests; `num_workers` decoding threads; `test_split` the
    stratified share of every class that a flat tree (``root/<class>/*``, no
    train/ val/ test/) holds out for testing.
    """
    if image_size is not None and image_size < 1:
        raise DataError(f"image size must be positive, got {image_size}")
    if limit_per_class is not None and limit_per_class < 1:
        raise DataError(f"limit per class must be at least 1, got {limit_per_class}")
    if not 0 < test_split < 1:  # also rejects NaN
        raise DataError(f"test split must be in (0, 1), got {test_split}")
    cache = Path(cache_dir if cache_dir is not None else DEFAULT_CACHE_DIR).expanduser().absolute()
    if name == "synthetic":
        return make_synthetic(synthetic_train, synthetic_test, image_size or 32, seed=seed)
    if name == "shapes":
        return make_shapes(synthetic_train, synthetic_test, image_size or 32, seed=seed)
    if name == "shapes_hard":  # its own training size: fewer images is part of what keeps it hard
        return make_shapes(min(synthetic_train, HARD_TRAIN), synthetic_test, image_size or 32, seed=seed, style=HARD)
    if name in CIFAR_FOLDERS:
        path = Path(root if root is not None else DEFAULT_DATA_ROOT).expanduser().absolute()
        return load_cifar(name, path, download, image_size, limit_per_class, cache, num_workers)
    if name == "imagefolder":
        if root is None:
            raise DataError("dataset 'imagefolder' needs --data-root pointing at a folder with one folder per "
                            "class, or with train/ and val/ or test/ subfolders holding one folder per class")
        path = Path(root).expanduser().absolute()
        if not path.is_dir():
            raise DataError(f"dataset 'imagefolder' not found at {path}; pass --data-root pointing at a "
                            "folder with one folder per class, or with train/ and val/ or test/ subfolders")
        return load_image_tree(path, name, image_size, limit_per_class, cache, num_workers, test_split, seed)
    raise DataError(f"unknown dataset '{name}'; valid names: {', '.join(DATASETS)}")
