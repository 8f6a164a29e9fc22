"""CIFAR-10/100 in torchvision's python-pickle format (an image tree at the root is accepted too)."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor
from torchvision.datasets import CIFAR10, CIFAR100

from ..common import one_line
from .core import DataError, InMemoryData
from .folders import fit, is_split_tree, load_image_tree

CIFAR_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}


def _first_per_class(y: Tensor, limit: int) -> Tensor:
    """Indices of the first `limit` examples of every class, in their original order."""
    keep = torch.zeros(len(y), dtype=torch.bool)
    for c in torch.unique(y):
        keep[(y == c).nonzero().flatten()[:limit]] = True
    return keep.nonzero().flatten()


def _resize_stored(x: Tensor, size: int, chunk: int = 4096) -> Tensor:
    return torch.cat([fit(x[i:i + chunk], size) for i in range(0, len(x), chunk)]) if len(x) else x


def load_cifar(name: str, root: Path, download: bool, image_size: int | None, limit: int | None,
               cache_dir: Path, num_workers: int) -> InMemoryData:
    folder = CIFAR_FOLDERS[name]
    if root.name == folder:  # accept the pickle folder itself as well as its parent
        root = root.parent
    if not (root / folder).is_dir() and is_split_tree(root):
        return load_image_tree(root, name, image_size, limit, cache_dir, num_workers)
    if not download and not (root / folder).is_dir():
        raise DataError(f"dataset '{name}' not found at {root} (tried {root / folder}); pass --data-root "
                        "pointing at it, add --download, or use --dataset synthetic / imagefolder")
    cls = CIFAR10 if name == "cifar10" else CIFAR100
    try:
        splits = [cls(str(root), train=train, download=download) for train in (True, False)]
    except RuntimeError as e:  # torchvision's integrity check failed
        raise DataError(f"dataset '{name}' at {root / folder} is incomplete or corrupted ({one_line(e)}); "
                        "delete it and add --download, or pass --data-root to a good copy") from None
    except OSError as e:  # download failed (URLError is an OSError) or unreadable files
        raise DataError(f"could not get '{name}' into {root} ({one_line(e)}); check network access or "
                        "fetch it by hand and pass --data-root, or use --dataset synthetic") from None
    tensors = []
    for split in splits:
        x = torch.from_numpy(split.data).permute(0, 3, 1, 2).contiguous()
        y = torch.tensor(split.targets, dtype=torch.int64)
        if limit is not None:
            idx = _first_per_class(y, limit)
            x, y = x[idx], y[idx]
        if image_size is not None and image_size != x.shape[-1]:
            x = _resize_stored(x, image_size)
        tensors += [x, y]
    classes = list(splits[0].classes)
    return InMemoryData(*tensors, len(classes), classes, name)
