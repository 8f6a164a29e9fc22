"""Tests of the dataset layer: synthetic generator, subsets, batch loader, image trees, CIFAR lookup."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torchvision.io import write_jpeg, write_png

import mfsearch.data.folders as folders
from mfsearch.data import (
    BatchLoader,
    DataError,
    InMemoryData,
    channel_mean_std,
    load_dataset,
    make_loaders,
    make_synthetic,
    stratified_split,
    stratified_subset,
)

RAW = dict(mean=(0.0, 0.0, 0.0), std=(1 / 255,) * 3)  # normalisation that leaves pixel values unchanged


# --------------------------------------------------------------------------- synthetic

def test_synthetic_is_deterministic_in_the_seed():
    a, b, c = make_synthetic(300, 60, seed=1), make_synthetic(300, 60, seed=1), make_synthetic(300, 60, seed=2)
    for field in ("train_x", "train_y", "test_x", "test_y"):
        assert torch.equal(getattr(a, field), getattr(b, field))
    assert not torch.equal(a.train_x, c.train_x)
    assert not torch.equal(a.train_y, c.train_y)


def test_synthetic_shapes_dtypes_and_balanced_classes():
    d = make_synthetic(400, 100, image_size=32, num_classes=10, seed=0)
    assert d.train_x.shape == (400, 3, 32, 32) and d.test_x.shape == (100, 3, 32, 32)
    assert d.train_x.dtype == torch.uint8 and d.train_y.dtype == torch.int64 and d.test_y.dtype == torch.int64
    assert d.num_classes == 10 and len(d.classes) == 10 and d.name == "synthetic" and d.image_size == 32
    assert not d.hflip  # the class is a direction, a mirror image changes it
    for y, n in ((d.train_y, 400), (d.test_y, 100)):
        assert int(y.min()) == 0 and int(y.max()) == 9
        assert y.bincount(minlength=10).tolist() == [n // 10] * 10
    assert int(d.train_x.float().std()) > 20  # not blank images


def test_synthetic_colour_alone_does_not_reveal_the_class():
    # Nearest class mean on the mean colour of each image stays at chance level (10%).
    d = make_synthetic(2000, 1000, seed=0)
    colour = [x.float().mean((2, 3)) for x in (d.train_x, d.test_x)]
    centres = torch.stack([colour[0][d.train_y == c].mean(0) for c in range(10)])
    accuracy = (torch.cdist(colour[1], centres).argmin(1) == d.test_y).float().mean()
    assert float(accuracy) < 0.15


def test_synthetic_other_sizes_and_bad_arguments():
    d = load_dataset("synthetic", seed=3, image_size=48, synthetic_train=60, synthetic_test=12)
    assert d.train_x.shape == (60, 3, 48, 48) and d.test_x.shape == (12, 3, 48, 48)
    assert torch.equal(d.train_x, make_synthetic(60, 12, image_size=48, seed=3).train_x)
    assert make_synthetic(40, 8, num_classes=4).train_y.bincount().tolist() == [10] * 4
    for kwargs, msg in ((dict(num_classes=1), r"num_classes must be in 2\.\.36 .*got 1"),
                        (dict(image_size=8), "image_size must be at least 16, got 8"),
                        (dict(n_train=5), r"n_train >= num_classes \(10\)")):
        with pytest.raises(DataError, match=msg):
            make_synthetic(**{"n_train": 100, "n_test": 10, **kwargs})


# --------------------------------------------------------------------------- subsets

def _labels(counts: list[int]) -> torch.Tensor:
    y = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    return y[torch.randperm(len(y), generator=torch.Generator().manual_seed(0))]


def test_stratified_subset_keeps_class_proportions():
    y = _labels([100, 50, 7, 1])
    idx = stratified_subset(y, 0.1, seed=0)
    assert y[idx].bincount(minlength=4).tolist() == [10, 5, 1, 1]  # round(0.7) = 1, at least 1 for 0.1
    assert torch.equal(idx, idx.unique())  # sorted, no duplicates
    assert stratified_subset(y, 0.25, seed=0).numel() == 25 + 13 + 2 + 1  # 12.5 and 1.75 round up
    assert torch.equal(stratified_subset(y, 1.0, seed=5), torch.arange(len(y)))


def test_stratified_subset_is_deterministic_and_seeded():
    y = _labels([200] * 5)
    assert torch.equal(stratified_subset(y, 0.3, seed=1), stratified_subset(y, 0.3, seed=1))
    assert not torch.equal(stratified_subset(y, 0.3, seed=1), stratified_subset(y, 0.3, seed=2))


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5, math.nan])
def test_stratified_subset_rejects_bad_fractions(fraction):
    with pytest.raises(DataError, match="fraction"):
        stratified_subset(torch.arange(10) % 2, fraction, seed=0)


# --------------------------------------------------------------------------- loader

def _images(n: int, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Random images labelled by their index, so each batch tells which images it holds."""
    x = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    return x, torch.arange(n)


@pytest.mark.parametrize("resolution", [32, 48, 16])
def test_loader_shapes_and_dtypes(resolution):
    x, y = _images(300)
    loader = BatchLoader(x, y, 64, resolution=resolution, train=True)
    batches = list(loader)
    assert len(batches) == len(loader) == 4  # drop_last for training
    for xb, yb in batches:
        assert xb.shape == (64, 3, resolution, resolution) and xb.dtype == torch.float32
        assert yb.shape == (64,) and yb.dtype == torch.int64
        assert torch.isfinite(xb).all()


def test_eval_loader_covers_everything_in_order_and_normalises():
    x, y = _images(300)
    loader = BatchLoader(x, y, 128)
    batches = list(loader)
    assert len(loader) == len(batches) == 3 and [len(b[1]) for b in batches] == [128, 128, 44]
    assert torch.equal(torch.cat([b[1] for b in batches]), y)
    xs = torch.cat([b[0] for b in batches])
    assert torch.allclose(xs.mean((0, 2, 3)), torch.zeros(3), atol=1e-3)
    assert torch.allclose(xs.std((0, 2, 3)), torch.ones(3), atol=1e-3)
    assert torch.equal(BatchLoader(x, y, 128, **RAW).__iter__().__next__()[0], x[:128].float())
    assert len(BatchLoader(x, y, 128, train=True, drop_last=False)) == 3


@pytest.mark.parametrize("resolution", [48, 16])
def test_loader_resize_matches_bilinear_interpolation(resolution):
    x, y = _images(32)
    xb, _ = next(iter(BatchLoader(x, y, 32, resolution=resolution, **RAW)))
    ref = torch.nn.functional.interpolate(x.float(), size=(resolution, resolution), mode="bilinear",
                                          align_corners=False, antialias=resolution < 32)
    assert float((xb - ref).abs().max()) <= 1.01  # resized in uint8: at most one level of rounding


def test_loader_channels_last():
    x, y = _images(64)
    for res in (32, 48):
        xb, _ = next(iter(BatchLoader(x, y, 32, resolution=res, train=True, channels_last=True)))
        assert xb.is_contiguous(memory_format=torch.channels_last)
        xb, _ = next(iter(BatchLoader(x, y, 32, resolution=res)))
        assert xb.is_contiguous()


def test_loader_shuffle_is_seeded_and_changes_every_epoch():
    x, y = _images(256)

    def orders(seed: int) -> list[torch.Tensor]:
        loader = BatchLoader(x, y, 64, train=True, seed=seed)
        return [torch.cat([yb for _, yb in loader]) for _ in range(2)]

    a, b, c = orders(0), orders(0), orders(1)
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    assert not torch.equal(a[0], c[0])
    assert not torch.equal(a[0], a[1])  # every epoch has its own order
    assert sorted(a[0].tolist()) == list(range(256))


def test_loader_batches_are_reproducible_and_epochs_replayable():
    x, y = _images(256)
    loader = BatchLoader(x, y, 64, train=True, seed=7)
    first = [xb for xb, _ in loader]
    assert all(torch.equal(a, b) for a, b in zip(first, (xb for xb, _ in BatchLoader(x, y, 64, train=True, seed=7))))
    loader.epoch = 0
    assert all(torch.equal(a, b) for a, b in zip(first, (xb for xb, _ in loader)))


def test_train_augmentation_is_a_padded_crop_or_mirror_of_the_source():
    x, y = _images(64, size=16)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    loader = BatchLoader(x, y, 64, train=True, pad=2, seed=0, **RAW)
    xb, yb = next(iter(loader))
    assert torch.equal(xb, xb.round())  # raw pixel values survive the identity normalisation
    shifted = mirrored = 0
    for img, i in zip(xb.to(torch.uint8), yb.tolist()):
        views = [(dy, dx, flip) for dy in range(5) for dx in range(5) for flip in (False, True)
                 if torch.equal(img, (padded[i].flip(2) if flip else padded[i])[:, dy:dy + 16, dx:dx + 16])]
        assert views, f"image {i} is not a crop of its padded source"
        shifted += any(v[:2] != (2, 2) for v in views)
        mirrored += any(v[2] for v in views)
    assert shifted > 32 and 10 < mirrored < 54
    no_flip = BatchLoader(x, y, 64, train=True, pad=0, flip=False, **RAW)
    xb, yb = next(iter(no_flip))
    assert torch.equal(xb.to(torch.uint8), x[yb])


def test_make_loaders_uses_train_statistics_subset_and_flip_setting():
    d = make_synthetic(200, 40, seed=0)
    idx = stratified_subset(d.train_y, 0.5, seed=0)
    train, test = make_loaders(d, 32, 48, train_indices=idx, channels_last=True)
    assert len(train.x) == 100 and len(train) == 3 and len(test) == 2
    assert not train.flip and train.pad == 4 and train.drop_last and not test.drop_last
    assert torch.allclose(train._shift, test._shift)
    xb, yb = next(iter(test))
    assert xb.shape == (32, 3, 48, 48) and xb.is_contiguous(memory_format=torch.channels_last)


def test_channel_mean_std_matches_direct_computation():
    x, _ = _images(50)
    mean, std = channel_mean_std(x, chunk=7)
    xf = x.double() / 255
    assert torch.allclose(torch.tensor(mean, dtype=torch.float64), xf.mean((0, 2, 3)), atol=1e-6)
    assert torch.allclose(torch.tensor(std, dtype=torch.float64), xf.std((0, 2, 3), correction=0), atol=1e-6)
    d = InMemoryData(x, torch.zeros(50, dtype=torch.int64), x, torch.zeros(50, dtype=torch.int64), 1, ["a"], "t")
    assert torch.allclose(torch.tensor(d.mean_std()), torch.tensor((mean, std)))


# --------------------------------------------------------------------------- image folders

def _write_tree(root: Path, sizes: dict[str, tuple[int, int]], per_class: int = 3, fmt: str = "png",
                eval_split: str = "val") -> dict[str, torch.Tensor]:
    """Write train/ and eval_split/ class folders of random images; returns the written pixels by path."""
    gen = torch.Generator().manual_seed(0)
    written = {}
    for split, n in (("train", per_class), (eval_split, 2)):
        for cls, (h, w) in sizes.items():
            folder = root / split / cls
            folder.mkdir(parents=True)
            for i in range(n):
                img = torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=gen)
                path = folder / f"{i:03d}.{fmt}"
                (write_png if fmt == "png" else write_jpeg)(img, str(path))
                written[f"{split}/{cls}/{path.name}"] = img
    return written


def _snapshot(root: Path) -> list[tuple[str, int, int]]:
    return sorted((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*"))


def test_imagefolder_loads_labels_pixels_and_uses_the_cache(tmp_path, monkeypatch):
    root, cache = tmp_path / "tree", tmp_path / "cache"
    written = _write_tree(root, {"cat": (24, 24), "ant": (24, 24), "bee": (24, 24)})
    before = _snapshot(root)
    d = load_dataset("imagefolder", root, cache_dir=cache)
    assert d.classes == ["ant", "bee", "cat"] and d.num_classes == 3 and d.name == "imagefolder"
    assert d.train_x.shape == (9, 3, 24, 24) and d.test_x.shape == (6, 3, 24, 24)
    assert d.train_x.dtype == torch.uint8 and d.train_y.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert d.test_y.tolist() == [0, 0, 1, 1, 2, 2]
    assert torch.equal(d.train_x[0], written["train/ant/000.png"])  # PNG is lossless: exact pixels
    assert torch.equal(d.test_x[5], written["val/cat/001.png"])
    assert _snapshot(root) == before  # nothing written into the data root
    assert len(list(cache.glob("imagefolder-*.pt"))) == 1

    def no_decoding(path: str) -> torch.Tensor:
        raise AssertionError("cache miss")

    monkeypatch.setattr(folders, "decode_rgb", no_decoding)
    again = load_dataset("imagefolder", root, cache_dir=cache)
    assert torch.equal(again.train_x, d.train_x) and torch.equal(again.test_y, d.test_y)
    assert again.classes == d.classes
    monkeypatch.undo()

    write_png(torch.zeros(3, 24, 24, dtype=torch.uint8), str(root / "train/ant/000.png"))  # changed file
    changed = load_dataset("imagefolder", root, cache_dir=cache)
    assert int(changed.train_x[0].max()) == 0 and torch.equal(changed.train_x[1:], d.train_x[1:])


def test_imagefolder_resizes_mixed_sizes_and_honours_limits(tmp_path):
    root = tmp_path / "tree"
    _write_tree(root, {"a": (40, 30), "b": (20, 50)}, per_class=4, fmt="jpg", eval_split="test")
    d = load_dataset("imagefolder", root, cache_dir=tmp_path / "c")
    assert d.train_x.shape == (8, 3, 64, 64) and d.test_x.shape == (4, 3, 64, 64)
    small = load_dataset("imagefolder", root, cache_dir=tmp_path / "c", image_size=16, limit_per_class=2)
    assert small.train_x.shape == (4, 3, 16, 16) and small.train_y.tolist() == [0, 0, 1, 1]
    assert small.test_x.shape == (4, 3, 16, 16)
    assert len(list((tmp_path / "c").glob("*.pt"))) == 2


def test_imagefolder_decodes_formats_torchvision_lacks_with_pil(tmp_path):
    from PIL import Image
    root = tmp_path / "tree"
    _write_tree(root, {"a": (12, 12)}, per_class=1)
    pixels = torch.randint(0, 256, (12, 12, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    Image.fromarray(pixels.numpy()).save(root / "train" / "a" / "extra.bmp")
    d = load_dataset("imagefolder", root, cache_dir=tmp_path / "c")
    assert d.train_x.shape == (2, 3, 12, 12) and torch.equal(d.train_x[1], pixels.permute(2, 0, 1))


def test_imagefolder_errors_name_the_problem(tmp_path):
    with pytest.raises(DataError, match="--data-root"):
        load_dataset("imagefolder", None)
    with pytest.raises(DataError, match="not found"):
        load_dataset("imagefolder", tmp_path / "missing")
    (tmp_path / "only_train" / "train" / "a").mkdir(parents=True)
    with pytest.raises(DataError, match="val/ or test/"):
        load_dataset("imagefolder", tmp_path / "only_train", cache_dir=tmp_path / "c")
    root = tmp_path / "tree"
    _write_tree(root, {"a": (8, 8)})
    (root / "val" / "stranger").mkdir()
    with pytest.raises(DataError, match="stranger"):
        load_dataset("imagefolder", root, cache_dir=tmp_path / "c")
    (root / "val" / "stranger").rmdir()
    (root / "train" / "a" / "broken.jpg").write_bytes(b"not an image")
    with pytest.raises(DataError, match="broken.jpg") as err:
        load_dataset("imagefolder", root, cache_dir=tmp_path / "c")
    assert "\n" not in str(err.value)



def _write_flat_tree(root: Path, classes: int = 3, per_class: int = 10) -> dict[str, torch.Tensor]:
    """root/<class>/<i>.png of random pixels, written with PIL; returns the pixels (3 x H x W) by path."""
    from PIL import Image
    gen = torch.Generator().manual_seed(0)
    written = {}
    for c in range(classes):
        (root / f"c{c}").mkdir(parents=True)
        for i in range(per_class):
            pixels = torch.randint(0, 256, (8, 8, 3), dtype=torch.uint8, generator=gen)
            Image.fromarray(pixels.numpy()).save(root / f"c{c}" / f"{i:02d}.png")
            written[f"c{c}/{i:02d}.png"] = pixels.permute(2, 0, 1)
    return written


def test_stratified_split_holds_out_a_share_of_every_class():
    y = _labels([10, 10, 3, 2])
    train, test = stratified_split(y, 0.2, seed=0)
    assert y[test].bincount(minlength=4).tolist() == [2, 2, 1, 1]  # at least 1 held out
    assert y[train].bincount(minlength=4).tolist() == [8, 8, 2, 1]  # at least 1 kept
    assert sorted(train.tolist() + test.tolist()) == list(range(len(y)))
    assert stratified_split(y, 0.9, seed=0)[0].numel() == 4  # never the whole class
    for bad in (0.0, 1.0, math.nan):
        with pytest.raises(DataError, match="test split"):
            stratified_split(y, bad, seed=0)


def test_flat_imagefolder_is_split_stratified_seeded_disjoint_and_cached(tmp_path, monkeypatch):
    root, cache = tmp_path / "flat", tmp_path / "cache"
    written = _write_flat_tree(root)
    before = _snapshot(root)
    d = load_dataset("imagefolder", root, cache_dir=cache, seed=0)
    assert d.classes == ["c0", "c1", "c2"] and d.num_classes == 3 and d.image_size == 8
    assert d.train_y.bincount().tolist() == [8, 8, 8] and d.test_y.bincount().tolist() == [2, 2, 2]  # 0.2
    pixels = {tuple(img.flatten().tolist()): path for path, img in written.items()}
    train = [pixels[tuple(img.flatten().tolist())] for img in d.train_x]  # exact PNG pixels, found by value
    test = [pixels[tuple(img.flatten().tolist())] for img in d.test_x]
    assert not set(train) & set(test) and len(set(train) | set(test)) == 30  # disjoint, covering the tree
    assert [int(p[1]) for p in train] == d.train_y.tolist() and [int(p[1]) for p in test] == d.test_y.tolist()
    assert _snapshot(root) == before and len(list(cache.glob("imagefolder-*.pt"))) == 1

    def no_decoding(path: str) -> torch.Tensor:
        raise AssertionError("cache miss")

    monkeypatch.setattr(folders, "decode_rgb", no_decoding)  # from here on every load is served by the cache
    again = load_dataset("imagefolder", root, cache_dir=cache, seed=0)
    assert torch.equal(again.test_x, d.test_x) and torch.equal(again.train_y, d.train_y)
    other = load_dataset("imagefolder", root, cache_dir=cache, seed=1)
    assert not torch.equal(other.test_x, d.test_x) and other.test_y.bincount().tolist() == [2, 2, 2]
    half = load_dataset("imagefolder", root, cache_dir=cache, test_split=0.5)
    assert half.test_y.bincount().tolist() == [5, 5, 5] and half.train_y.bincount().tolist() == [5, 5, 5]
    assert len(list(cache.glob("imagefolder-*.pt"))) == 1  # one cache file serves every split


def test_flat_imagefolder_errors_are_one_line(tmp_path):
    empty = tmp_path / "empty"
    for cls in ("a", "b"):
        (empty / cls).mkdir(parents=True)
        (empty / cls / "notes.txt").write_text("no image here")
    with pytest.raises(DataError, match="no images") as err:
        load_dataset("imagefolder", empty, cache_dir=tmp_path / "c")
    assert "\n" not in str(err.value) and "<root>/<class>/<image>" in str(err.value)
    (tmp_path / "nothing").mkdir()
    with pytest.raises(DataError, match="no class folders"):
        load_dataset("imagefolder", tmp_path / "nothing", cache_dir=tmp_path / "c")
    lonely = tmp_path / "lonely"
    _write_flat_tree(lonely, classes=2, per_class=1)
    with pytest.raises(DataError, match="at least 2"):
        load_dataset("imagefolder", lonely, cache_dir=tmp_path / "c")
    with pytest.raises(DataError, match="test split"):
        load_dataset("imagefolder", lonely, cache_dir=tmp_path / "c", test_split=1.0)


@pytest.mark.parametrize("name", ["cifar10", "imagefolder"])
def test_cifar10_image_tree_small_slice(tmp_path, name, cifar10_root):  # skips without the tree; fails under CI=true
    before = (cifar10_root / "train").stat().st_mtime_ns
    d = load_dataset(name, cifar10_root, cache_dir=tmp_path, limit_per_class=20)
    assert d.name == name and d.num_classes == 10 and "airplane" in d.classes
    assert d.train_x.shape == (200, 3, 32, 32) and d.test_x.shape == (200, 3, 32, 32)
    assert d.train_y.bincount().tolist() == [20] * 10 and d.test_y.bincount().tolist() == [20] * 10
    assert (cifar10_root / "train").stat().st_mtime_ns == before
    assert len(list(tmp_path.glob(f"{name}-*.pt"))) == 1


# --------------------------------------------------------------------------- names and CIFAR pickles

def test_missing_cifar_root_names_the_path_and_alternatives(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError) as err:
        load_dataset("cifar10", missing)
    msg = str(err.value)
    assert str(missing) in msg and "cifar-10-batches-py" in msg and "--download" in msg and "synthetic" in msg
    assert "\n" not in msg
    with pytest.raises(DataError, match="cifar-100-python"):
        load_dataset("cifar100", missing)


def test_corrupt_cifar_pickle_folder_is_a_data_error(tmp_path):
    (tmp_path / "cifar-10-batches-py").mkdir()
    with pytest.raises(DataError, match="corrupted"):
        load_dataset("cifar10", tmp_path)


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(DataError, match="shapes, shapes_hard, synthetic, cifar10, cifar100, imagefolder"):
        load_dataset("mnist")


@pytest.mark.parametrize("kwargs,msg", [(dict(image_size=0), "image size must be positive, got 0"),
                                        (dict(limit_per_class=0), "limit per class must be at least 1, got 0")])
def test_bad_options_are_data_errors(kwargs, msg):
    with pytest.raises(DataError, match=msg):
        load_dataset("synthetic", **kwargs)


def test_shapes_is_balanced_deterministic_and_drawn_per_class():
    from mfsearch.data.shapes import CLASSES, make_shapes
    a, b = make_shapes(200, 50, seed=3), make_shapes(200, 50, seed=3)
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_y, b.test_y)
    assert not torch.equal(a.train_x, make_shapes(200, 50, seed=4).train_x)
    assert a.classes == list(CLASSES) and a.hflip and a.train_x.dtype == torch.uint8
    assert torch.bincount(a.train_y, minlength=10).tolist() == [20] * 10
    assert a.train_x.shape == (200, 3, 32, 32) and a.test_x.shape == (50, 3, 32, 32)
    with pytest.raises(DataError, match="n_train >= 10"):
        make_shapes(5, 0)


def test_shapes_hard_is_its_own_style_and_leaves_shapes_as_it_was():
    import hashlib

    from mfsearch.data.shapes import HARD, HARD_TRAIN, make_shapes
    # recorded before ShapeStyle existed: a style must not move the `shapes` stream by one draw
    a = make_shapes(200, 40, seed=3)
    assert hashlib.sha1(a.train_x.numpy().tobytes()).hexdigest()[:10] == "07097a516e"
    hard = load_dataset("shapes_hard", seed=0, synthetic_train=400, synthetic_test=40)
    assert hard.name == "shapes_hard" and hard.train_x.shape == (400, 3, 32, 32)
    assert not torch.equal(hard.train_x, make_shapes(400, 40, seed=0).train_x)
    assert torch.equal(hard.train_x, make_shapes(400, 40, seed=0, style=HARD).train_x)
    assert HARD_TRAIN == 5_000 and HARD.strokes == 3
    # smaller shapes: less of each image is the object
    assert hard.test_masks.float().mean() < make_shapes(400, 40, seed=0).test_masks.float().mean()


def test_built_in_data_knows_where_its_objects_are():
    from mfsearch.data.shapes import make_shapes
    from mfsearch.data.synthetic import make_synthetic
    for data in (make_shapes(100, 40, seed=1), make_synthetic(100, 40, seed=1)):
        m = data.test_masks
        assert m.shape == (40, 32, 32) and m.dtype == torch.bool
        share = m.float().mean((1, 2))
        assert (share > 0.02).all() and (share < 0.8).all()     # an object, not the whole image
        # the object's pixels differ from the background's: its colour is offset from it
        img = data.test_x.float()
        inside = (img * m[:, None]).sum((2, 3)) / m[:, None].sum((2, 3))
        outside = (img * ~m[:, None]).sum((2, 3)) / (~m[:, None]).sum((2, 3))
        assert ((inside - outside).abs().sum(1) > 20).float().mean() > 0.9


def test_the_built_in_agreement_a_run_prints_is_the_measured_one():
    """The numbers search.py prints about `shapes` are those of the committed builtin_fidelity report."""
    import re
    from pathlib import Path

    from mfsearch.data import BUILT_IN_AGREEMENT
    report = (Path(__file__).resolve().parents[1] / "docs" / "results" / "builtin_fidelity" / "report.md").read_text()
    row = next(line for line in report.splitlines() if line.startswith("| shapes | 12 |"))
    near, seed_rho = re.search(r"\| (\d+) \(\d+ of \d+ runs\) \| [^|]+ \| ([-\d.]+) \|", row).groups()
    cifar = next(line for line in report.splitlines() if line.startswith("| shapes vs cifar10 |"))
    cifar_rho = cifar.split("|")[3].strip()
    text = BUILT_IN_AGREEMENT["shapes"]
    assert f"Spearman {seed_rho}" in text and f"Spearman {cifar_rho}" in text and f"{near} of 12" in text
