"""Image trees (one folder per class) decoded once into uint8 tensors and cached.

Two layouts: a split tree, ``root/train/<class>/*`` plus ``root/val`` or
``root/test``, and a flat tree, ``root/<class>/*``, whose test split is a seeded
stratified hold-out (``test_split`` of every class). Images are decoded on a
thread pool and cached under ``cache_dir`` (never inside the read-only data root);
a flat tree's cache holds all its images, so every split of it shares one file.
"""
from __future__ import annotations

import hashlib
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torchvision.io import ImageReadMode, decode_image
from torchvision.transforms.v2 import functional as TF

from ..common import one_line
from .core import DataError, InMemoryData, _pick_per_class, stratified_split

DEFAULT_FOLDER_SIZE = 64  # stored size for image trees whose images differ in size
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
DEFAULT_TEST_SPLIT = 0.2  # share of every class a flat tree holds out for testing
_CACHE_VERSION = 1  # bump when the cache layout or decoding changes
_LAYOUTS = "<root>/<class>/<image>, or <root>/train/<class>/<image> plus <root>/val or <root>/test"


def fit(img: Tensor, size: int) -> Tensor:
    """Resize the shorter side to `size` (antialiased) and center-crop to size x size."""
    if img.shape[-2:] == (size, size):
        return img
    return TF.center_crop(TF.resize(img, [size], antialias=True), [size, size])


def decode_rgb(path: str) -> Tensor:
    """Decode one image to 3 x H x W uint8 (torchvision first, PIL for formats it lacks)."""
    with open(path, "rb") as f:
        raw = bytearray(f.read())
    try:
        img = decode_image(torch.frombuffer(raw, dtype=torch.uint8), mode=ImageReadMode.RGB)
        return img if img.dtype == torch.uint8 else TF.to_dtype(img, torch.uint8, scale=True)  # 16-bit PNG
    except RuntimeError:
        pass
    try:
        with Image.open(path) as im:
            return torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1).contiguous()
    except (OSError, ValueError) as e:
        raise DataError(f"cannot decode image {path} ({one_line(e)}); remove or replace the file") from None


def _decode_chunk(paths: Sequence[str], size: int, keep: tuple[int, int]) -> list[Tensor]:
    """Decode `paths`; images whose H x W equals `keep` stay as they are, others are fitted to `size`."""
    images = []
    for p in paths:
        img = decode_rgb(p)
        images.append(img if tuple(img.shape[-2:]) == keep else fit(img, size))
    return images


def is_split_tree(root: Path) -> bool:
    return (root / "train").is_dir() and ((root / "val").is_dir() or (root / "test").is_dir())


def _list_split(split_dir: Path, classes: list[str], limit: int | None) -> list[tuple[str, int, int, int]]:
    """(path, label, size, mtime_ns) of every image, sorted, at most `limit` per class."""
    index = {c: i for i, c in enumerate(classes)}
    found = []
    for entry in sorted(os.scandir(split_dir), key=lambda e: e.name):
        if not entry.is_dir():
            continue
        if entry.name not in index:
            raise DataError(f"class folder {entry.path} has no counterpart in {split_dir.parent / 'train'}; "
                            "every evaluation class needs a train/<class> folder")
        names = sorted(e.name for e in os.scandir(entry.path)
                       if e.is_file() and e.name.lower().endswith(IMAGE_EXTENSIONS))
        for fname in names[:limit]:
            st = os.stat(os.path.join(entry.path, fname))
            found.append((os.path.join(entry.path, fname), index[entry.name], st.st_size, st.st_mtime_ns))
    if not found:
        raise DataError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in class folders under {split_dir}; "
                        f"imagefolder expects {_LAYOUTS}")
    return found


def _cache_key(root: Path, files: list[tuple[str, int, int, int]], image_size: int | None,
               limit: int | None) -> str:
    """Hash of everything the decoded tensors depend on: tree path, file list, sizes, mtimes, options."""
    h = hashlib.sha256(f"{_CACHE_VERSION}|{root}|{image_size}|{limit}".encode())
    for path, label, nbytes, mtime in files:
        h.update(f"|{os.path.relpath(path, root)}:{label}:{nbytes}:{mtime}".encode())
    return h.hexdigest()[:20]


def _load_cache(path: Path) -> dict | None:
    try:
        blob = torch.load(path, weights_only=True)
    except FileNotFoundError:
        return None
    except Exception as e:  # corrupt or truncated cache: rebuild it
        print(f"[mfsearch.data] ignoring unreadable cache {path} ({one_line(e)})", file=sys.stderr)
        return None
    return blob if isinstance(blob, dict) and blob.get("version") == _CACHE_VERSION else None


def _save_cache(path: Path, blob: dict) -> None:
    """Write atomically; a failure only costs the next load a re-decode, so it only warns."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(blob, tmp)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        print(f"[mfsearch.data] could not write cache {path} ({one_line(e)}); pass --cache-dir to a "
              "writable folder to make the next load fast", file=sys.stderr)


def _decode_all(paths: list[str], image_size: int | None, label: str, num_workers: int) -> Tensor:
    """Decode every path on a thread pool into one N x 3 x S x S uint8 tensor, reporting progress."""
    if image_size is None:  # keep the native size if all images share it, else DEFAULT_FOLDER_SIZE
        h, w = decode_rgb(paths[0]).shape[-2:]
        size = h if h == w else DEFAULT_FOLDER_SIZE
        keep = (h, w) if h == w else (size, size)
    else:
        size, keep = image_size, (image_size, image_size)
    chunk = 256
    chunks = [paths[i:i + chunk] for i in range(0, len(paths), chunk)]
    images: list[Tensor] = []
    start, next_report = time.perf_counter(), 0.1
    with ThreadPoolExecutor(max_workers=max(1, num_workers)) as pool:
        for part in pool.map(_decode_chunk, chunks, [size] * len(chunks), [keep] * len(chunks)):
            images.extend(part)
            if len(images) >= next_report * len(paths):
                print(f"[mfsearch.data] decoding {label}: {len(images)}/{len(paths)} images "
                      f"({100 * len(images) // len(paths)}%, {time.perf_counter() - start:.1f} s)",
                      file=sys.stderr, flush=True)
                next_report = math.floor(10 * len(images) / len(paths) + 1) / 10
    if any(img.shape[-2:] != images[0].shape[-2:] for img in images):  # sizes turned out mixed
        images = [fit(img, DEFAULT_FOLDER_SIZE) for img in images]
    return torch.stack(images)


def _class_folders(folder: Path) -> list[str]:
    classes = sorted(e.name for e in os.scandir(folder) if e.is_dir())
    if not classes:
        raise DataError(f"no class folders in {folder}; imagefolder expects {_LAYOUTS}")
    return classes


def load_image_tree(root: Path, name: str, image_size: int | None, limit: int | None, cache_dir: Path,
                    num_workers: int, test_split: float = DEFAULT_TEST_SPLIT, seed: int = 0) -> InMemoryData:
    """Decode an image tree once, then serve it from a cache file keyed by its contents.

    A root holding train/, val/ or test/ is a split tree; any other root is a flat
    tree, split by `test_split` and `seed` after loading (see `stratified_split`).
    """
    if any((root / split).is_dir() for split in ("train", "val", "test")):
        return _load_split_tree(root, name, image_size, limit, cache_dir, num_workers)
    return _load_flat_tree(root, name, image_size, limit, cache_dir, num_workers, test_split, seed)


def _load_split_tree(root: Path, name: str, image_size: int | None, limit: int | None,
                     cache_dir: Path, num_workers: int) -> InMemoryData:
    train_dir = root / "train"
    eval_dir = root / "val" if (root / "val").is_dir() else root / "test"
    if not train_dir.is_dir() or not eval_dir.is_dir():
        raise DataError(f"dataset '{name}' at {root} needs train/ and val/ or test/ subfolders with one "
                        "folder per class (or class folders only, without train/, val/, test/); "
                        "pass --data-root pointing at such a tree")
    classes = _class_folders(train_dir)
    train_files = _list_split(train_dir, classes, limit)
    eval_files = _list_split(eval_dir, classes, limit)
    files = train_files + eval_files
    cache_file = cache_dir / f"{name}-{_cache_key(root, files, image_size, limit)}.pt"
    blob = _load_cache(cache_file)
    if blob is None:
        x = _decode_all([f[0] for f in files], image_size, f"{name} {root}", num_workers)
        labels = torch.tensor([f[1] for f in files], dtype=torch.int64)
        n = len(train_files)
        blob = {"version": _CACHE_VERSION, "classes": classes, "train_x": x[:n], "train_y": labels[:n],
                "test_x": x[n:], "test_y": labels[n:]}
        _save_cache(cache_file, blob)
    return InMemoryData(blob["train_x"], blob["train_y"], blob["test_x"], blob["test_y"], len(classes),
                        list(blob["classes"]), name)


def _load_flat_tree(root: Path, name: str, image_size: int | None, limit: int | None, cache_dir: Path,
                    num_workers: int, test_split: float, seed: int) -> InMemoryData:
    classes = _class_folders(root)
    files = _list_split(root, classes, limit)
    counts = Counter(f[1] for f in files)
    for label, cls in enumerate(classes):
        if counts[label] < 2:
            raise DataError(f"class folder {root / cls} holds {counts[label]} image(s); without train/ and val/ "
                            "or test/ every class needs at least 2 (some are held out for testing)")
    # The key cannot collide with a split tree's: a flat tree's paths never start with train/.
    cache_file = cache_dir / f"{name}-{_cache_key(root, files, image_size, limit)}.pt"
    blob = _load_cache(cache_file)
    if blob is None:
        blob = {"version": _CACHE_VERSION, "classes": classes,
                "x": _decode_all([f[0] for f in files], image_size, f"{name} {root}", num_workers),
                "y": torch.tensor([f[1] for f in files], dtype=torch.int64)}
        _save_cache(cache_file, blob)
    x, y = blob["x"], blob["y"]
    train, test = stratified_split(y, test_split, seed)
    return InMemoryData(x[train], y[train], x[test], y[test], len(classes), list(blob["classes"]), name)


def write_image_tree(data: InMemoryData, out: Path, per_class: int, seed: int = 0) -> int:
    """`per_class` random training images of every class as out/<class>/<i>.png, with no
    train/test split: a small photo folder as a user would bring one. Returns images written."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise DataError(f"{out} exists and is not empty; pass a new folder to --write-tree")
    picks = _pick_per_class(data.train_y, lambda n: min(n, per_class), seed)
    for i in picks.tolist():
        folder = out / data.classes[int(data.train_y[i])]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(data.train_x[i].permute(1, 2, 0).contiguous().numpy()).save(folder / f"{i:06d}.png")
    return len(picks)
