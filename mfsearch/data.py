"""Dataset layer for the short-proxy NAS trainer.

Proxy trainings run for a few epochs on a few CPU cores, so the input pipeline
must never be the bottleneck: every image is decoded once and kept in memory
as a uint8 tensor (N x 3 x H x W), and batches are built by vectorised tensor
ops on the whole batch (gather, crop, flip, resize, normalise) instead of
per-image PIL transforms.

Datasets (``load_dataset``):

* ``synthetic`` -- built in, offline, deterministic from the seed. Each image
  holds a plus sign, a filled square and sometimes a distractor disc, with
  random colours on a random textured, noisy background. The class is the
  direction of the square as seen from the plus (one of ``num_classes``
  angular sectors), so it needs local processing (which blob is which shape)
  and global processing (their relative position); colour and texture carry
  no label information. Measured with ``python -m mfsearch.data --baselines``
  (seed 0, 20k train / 4k test, 32 px, 2 threads, no augmentation):
  logistic regression on raw pixels 11.5% test accuracy after 15 epochs
  (chance 10%; it reaches 34% on train, i.e. only memorises), a 3-block CNN
  39.0% after 3 epochs and 76.4% after 5. Generating 20k + 4k images takes
  about 1.2 s.
* ``cifar10`` / ``cifar100`` -- torchvision's python-pickle format under
  ``root``; a root holding an ImageFolder tree (``train/``, ``test/``) is
  accepted too.
* ``imagefolder`` -- ``root/train/<class>/*`` plus ``root/val`` or
  ``root/test``; decoded on a thread pool and cached under ``cache_dir``
  (never inside the read-only data root). CIFAR-10 as 60k JPEGs: first load
  6.2 s (3.3 s with the files in the OS page cache), cached load 0.5 s.

``BatchLoader`` delivers 170k-330k training images/s at 32 px and 45k-95k at
64 px (batch 128, crop + flip, 2 threads; ``python -m mfsearch.data --bench``),
while the small CNN above trains at about 1.6k images/s.
See docs/data.md for the protocols behind these numbers.
"""
from __future__ import annotations

import argparse
import hashlib
import math
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor
from torchvision.datasets import CIFAR10, CIFAR100
from torchvision.io import ImageReadMode, decode_image
from torchvision.transforms.v2 import functional as TF

DATASETS = ("synthetic", "cifar10", "cifar100", "imagefolder")
DEFAULT_DATA_ROOT = Path("~/.cache/mfsearch/data")
DEFAULT_CACHE_DIR = Path("~/.cache/mfsearch/datasets")
DEFAULT_FOLDER_SIZE = 64  # stored size for image trees whose images differ in size
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
_CACHE_VERSION = 1  # bump when the cache layout or decoding changes
_SYNTH_CHUNK = 4096  # images rendered at once; fixed because the noise stream depends on it
_CIFAR_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}


class DataError(Exception):
    """A data problem the user can fix; the message is one line saying how (CLI exit code 2)."""


@dataclass(eq=False)
class InMemoryData:
    """Decoded train/test splits as uint8 image tensors (N x 3 x H x W) and int64 labels."""

    train_x: Tensor
    train_y: Tensor
    test_x: Tensor
    test_y: Tensor
    num_classes: int
    classes: list[str]
    name: str
    hflip: bool = True  # whether a horizontal flip keeps the label (not for synthetic: class = direction)
    _stats: tuple[tuple[float, ...], tuple[float, ...]] | None = field(default=None, init=False, repr=False,
                                                                       compare=False)

    @property
    def image_size(self) -> int:
        """Stored side length; the loader resizes from it to any requested resolution."""
        return int(self.train_x.shape[-1])

    def mean_std(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean and std of the training images in [0, 1], computed once."""
        if self._stats is None:
            self._stats = channel_mean_std(self.train_x)
        return self._stats


def channel_mean_std(x: Tensor, chunk: int = 2048) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean/std of uint8 images in [0, 1], in chunks so no full float copy is made."""
    total = torch.zeros(x.shape[1], dtype=torch.float64)
    total_sq = torch.zeros_like(total)
    for i in range(0, len(x), chunk):
        xc = x[i:i + chunk].float().div_(255)
        total += xc.sum((0, 2, 3)).double()
        total_sq += xc.square_().sum((0, 2, 3)).double()
    count = x.numel() / x.shape[1]
    mean = total / count
    std = (total_sq / count - mean.square()).clamp_min(1e-12).sqrt()
    return tuple(mean.tolist()), tuple(std.tolist())


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


# --------------------------------------------------------------------------- synthetic

def _paint(img: Tensor, mask: Tensor, color: Tensor) -> Tensor:
    return torch.where(mask[:, None], color[:, :, None, None], img)


def make_synthetic(n_train: int = 20_000, n_test: int = 4_000, image_size: int = 32,
                   num_classes: int = 10, seed: int = 0) -> InMemoryData:
    """Procedural relation dataset: class = direction of the square as seen from the plus sign.

    The angle is drawn from the middle 40% of the class's sector and the two
    shapes are at least 9/32 of the image apart, so labels are unambiguous;
    shape sizes, positions, colours, background texture, pixel noise and an
    optional distractor disc are nuisances. Same arguments give identical tensors.
    """
    if not 2 <= num_classes <= 36:
        raise DataError(f"synthetic num_classes must be in 2..36 (one angular sector each), got {num_classes}")
    if image_size < 16:
        raise DataError(f"synthetic image_size must be at least 16, got {image_size}")
    if n_train < num_classes or n_test < 0:
        raise DataError(f"synthetic needs n_train >= num_classes ({num_classes}) and n_test >= 0, "
                        f"got {n_train} / {n_test}; pass larger sizes")
    n, size, scale = n_train + n_test, image_size, image_size / 32
    g = torch.Generator().manual_seed(seed)
    y = torch.cat([(torch.arange(m) % num_classes)[torch.randperm(m, generator=g)]  # balanced splits
                   for m in (n_train, n_test)])

    # Layout: plus at a, square at b = a + dist * (cos theta, -sin theta), theta in the class sector.
    r_plus = (3 + 1.5 * torch.rand(n, generator=g)) * scale
    r_square = (3 + 1.5 * torch.rand(n, generator=g)) * scale
    theta = (y + 0.5 + 0.4 * (torch.rand(n, generator=g) - 0.5)) * (2 * math.pi / num_classes)
    margin = torch.maximum(r_plus, r_square) + 1
    d_min, d_max = 9 * scale, size - 1 - 2 * margin
    dist = d_min + (d_max - d_min) * torch.rand(n, generator=g)
    dx, dy = dist * torch.cos(theta), -dist * torch.sin(theta)
    lo_x, lo_y = margin - dx.clamp(max=0), margin - dy.clamp(max=0)
    ax = lo_x + (size - 1 - margin - dx.clamp(min=0) - lo_x) * torch.rand(n, generator=g)
    ay = lo_y + (size - 1 - margin - dy.clamp(min=0) - lo_y) * torch.rand(n, generator=g)
    bx, by = ax + dx, ay + dy
    disc_xy = margin[:, None] + (size - 1 - 2 * margin[:, None]) * torch.rand(n, 2, generator=g)
    disc_r = (3 + 1.5 * torch.rand(n, generator=g)) * scale
    disc_on = torch.rand(n, generator=g) < 0.5

    # Colours: background in the mid range, shapes offset from it in a random RGB direction.
    bg = 0.25 + 0.5 * torch.rand(n, 3, generator=g)
    offset = torch.randn(n, 3, 3, generator=g)
    offset = offset / offset.norm(dim=-1, keepdim=True) * (0.45 + 0.3 * torch.rand(n, 3, 1, generator=g))
    colors = (bg[:, None] + offset).clamp(0, 1)  # plus, square, disc
    texture = 0.12 * torch.randn(n, 3, 5, 5, generator=g)

    out = torch.empty(n, 3, size, size, dtype=torch.uint8)
    xs = torch.arange(size, dtype=torch.float32)[None, None, :]
    ys = torch.arange(size, dtype=torch.float32)[None, :, None]
    for s in range(0, n, _SYNTH_CHUNK):  # rendered in chunks to bound float memory
        sl = slice(s, min(n, s + _SYNTH_CHUNK))
        img = bg[sl, :, None, None] + F.interpolate(texture[sl], size=(size, size), mode="bicubic",
                                                    align_corners=False)
        img += 0.06 * torch.randn(img.shape, generator=g)
        ddx, ddy = xs - disc_xy[sl, 0, None, None], ys - disc_xy[sl, 1, None, None]
        disc = (ddx.square() + ddy.square() <= disc_r[sl, None, None].square()) & disc_on[sl, None, None]
        img = _paint(img, disc, colors[sl, 2])
        ddx, ddy = (xs - ax[sl, None, None]).abs(), (ys - ay[sl, None, None]).abs()
        rad = r_plus[sl, None, None]
        arm = rad / 2
        plus = ((ddx <= rad) & (ddy <= arm)) | ((ddy <= rad) & (ddx <= arm))
        img = _paint(img, plus, colors[sl, 0])
        rad = r_square[sl, None, None]
        square = ((xs - bx[sl, None, None]).abs() <= rad) & ((ys - by[sl, None, None]).abs() <= rad)
        img = _paint(img, square, colors[sl, 1])
        out[sl] = img.clamp_(0, 1).mul_(255).round_().to(torch.uint8)

    step = 360 / num_classes
    classes = [f"square_at_{(c + 0.5) * step:g}deg" for c in range(num_classes)]
    return InMemoryData(out[:n_train], y[:n_train], out[n_train:], y[n_train:], num_classes, classes,
                        "synthetic", hflip=False)


# --------------------------------------------------------------------------- image folders

def _fit(img: Tensor, size: int) -> Tensor:
    """Resize the shorter side to `size` (antialiased) and center-crop to size x size."""
    if img.shape[-2:] == (size, size):
        return img
    return TF.center_crop(TF.resize(img, [size], antialias=True), [size, size])


def _decode(path: str) -> Tensor:
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
        raise DataError(f"cannot decode image {path} ({_one_line(e)}); remove or replace the file") from None


def _decode_chunk(paths: Sequence[str], size: int, keep: tuple[int, int]) -> list[Tensor]:
    """Decode `paths`; images whose H x W equals `keep` stay as they are, others are fitted to `size`."""
    images = []
    for p in paths:
        img = _decode(p)
        images.append(img if tuple(img.shape[-2:]) == keep else _fit(img, size))
    return images


def _is_image_tree(root: Path) -> bool:
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
                        "imagefolder expects <root>/train/<class>/<image> and <root>/val or <root>/test")
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
        print(f"[mfsearch.data] ignoring unreadable cache {path} ({_one_line(e)})", file=sys.stderr)
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
        print(f"[mfsearch.data] could not write cache {path} ({_one_line(e)}); pass --cache-dir to a "
              "writable folder to make the next load fast", file=sys.stderr)


def _decode_all(paths: list[str], image_size: int | None, label: str, num_workers: int) -> Tensor:
    """Decode every path on a thread pool into one N x 3 x S x S uint8 tensor, reporting progress."""
    if image_size is None:  # keep the native size if all images share it, else DEFAULT_FOLDER_SIZE
        h, w = _decode(paths[0]).shape[-2:]
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
        images = [_fit(img, DEFAULT_FOLDER_SIZE) for img in images]
    return torch.stack(images)


def _load_image_tree(root: Path, name: str, image_size: int | None, limit: int | None,
                     cache_dir: Path, num_workers: int) -> InMemoryData:
    """Decode an ImageFolder tree once, then serve it from a cache file keyed by its contents."""
    train_dir = root / "train"
    eval_dir = root / "val" if (root / "val").is_dir() else root / "test"
    if not train_dir.is_dir() or not eval_dir.is_dir():
        raise DataError(f"dataset '{name}' at {root} needs train/ and val/ or test/ subfolders with one "
                        "folder per class; pass --data-root pointing at such a tree")
    classes = sorted(e.name for e in os.scandir(train_dir) if e.is_dir())
    if not classes:
        raise DataError(f"no class folders in {train_dir}; imagefolder expects <root>/train/<class>/<image>")
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


# --------------------------------------------------------------------------- CIFAR pickles

def _first_per_class(y: Tensor, limit: int) -> Tensor:
    """Indices of the first `limit` examples of every class, in their original order."""
    keep = torch.zeros(len(y), dtype=torch.bool)
    for c in torch.unique(y):
        keep[(y == c).nonzero().flatten()[:limit]] = True
    return keep.nonzero().flatten()


def _resize_stored(x: Tensor, size: int, chunk: int = 4096) -> Tensor:
    return torch.cat([_fit(x[i:i + chunk], size) for i in range(0, len(x), chunk)]) if len(x) else x


def _load_cifar(name: str, root: Path, download: bool, image_size: int | None, limit: int | None,
                cache_dir: Path, num_workers: int) -> InMemoryData:
    folder = _CIFAR_FOLDERS[name]
    if root.name == folder:  # accept the pickle folder itself as well as its parent
        root = root.parent
    if not (root / folder).is_dir() and _is_image_tree(root):
        return _load_image_tree(root, name, image_size, limit, cache_dir, num_workers)
    if not download and not (root / folder).is_dir():
        raise DataError(f"dataset '{name}' not found at {root} (tried {root / folder}); pass --data-root "
                        "pointing at it, add --download, or use --dataset synthetic / imagefolder")
    cls = CIFAR10 if name == "cifar10" else CIFAR100
    try:
        splits = [cls(str(root), train=train, download=download) for train in (True, False)]
    except RuntimeError as e:  # torchvision's integrity check failed
        raise DataError(f"dataset '{name}' at {root / folder} is incomplete or corrupted ({_one_line(e)}); "
                        "delete it and add --download, or pass --data-root to a good copy") from None
    except OSError as e:  # download failed (URLError is an OSError) or unreadable files
        raise DataError(f"could not get '{name}' into {root} ({_one_line(e)}); check network access or "
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


# --------------------------------------------------------------------------- entry point

def load_dataset(name: str, root: str | os.PathLike | None = None, download: bool = False, seed: int = 0,
                 cache_dir: str | os.PathLike | None = None, *, image_size: int | None = None,
                 limit_per_class: int | None = None, synthetic_train: int = 20_000,
                 synthetic_test: int = 4_000, num_workers: int = 2) -> InMemoryData:
    """Load a dataset fully into memory as uint8 tensors.

    `seed` only affects `synthetic`; `image_size` is the stored side length
    (None: 32 for synthetic and CIFAR, the common size of an image tree, or 64
    when its sizes differ); `limit_per_class` keeps the first N images of every
    class per split (cheap smoke tests); `num_workers` decoding threads.
    """
    if image_size is not None and image_size < 1:
        raise DataError(f"image size must be positive, got {image_size}")
    if limit_per_class is not None and limit_per_class < 1:
        raise DataError(f"limit per class must be at least 1, got {limit_per_class}")
    cache = Path(cache_dir if cache_dir is not None else DEFAULT_CACHE_DIR).expanduser().absolute()
    if name == "synthetic":
        return make_synthetic(synthetic_train, synthetic_test, image_size or 32, seed=seed)
    if name in _CIFAR_FOLDERS:
        path = Path(root if root is not None else DEFAULT_DATA_ROOT).expanduser().absolute()
        return _load_cifar(name, path, download, image_size, limit_per_class, cache, num_workers)
    if name == "imagefolder":
        if root is None:
            raise DataError("dataset 'imagefolder' needs --data-root pointing at a folder with train/ and "
                            "val/ or test/ subfolders (one folder per class inside each)")
        path = Path(root).expanduser().absolute()
        if not path.is_dir():
            raise DataError(f"dataset 'imagefolder' not found at {path}; pass --data-root pointing at a "
                            "folder with train/ and val/ or test/ subfolders")
        return _load_image_tree(path, name, image_size, limit_per_class, cache, num_workers)
    raise DataError(f"unknown dataset '{name}'; valid names: {', '.join(DATASETS)}")


def stratified_subset(y: Tensor, fraction: float, seed: int) -> Tensor:
    """Sorted indices keeping round(fraction * n_c) (at least 1) random examples of every class c.

    Per-class proportions keep the class balance of small proxy subsets equal
    to the full set's; the same (y, fraction, seed) always gives the same subset.
    """
    if not 0 < fraction <= 1:  # also rejects NaN
        raise DataError(f"subset fraction must be in (0, 1], got {fraction}")
    y = y.cpu()
    g = torch.Generator().manual_seed(seed)
    picks = []
    for c in torch.unique(y):
        idx = (y == c).nonzero().flatten()
        k = max(1, math.floor(fraction * len(idx) + 0.5))
        picks.append(idx[torch.randperm(len(idx), generator=g)[:k]])
    return torch.cat(picks).sort().values


# --------------------------------------------------------------------------- batches

class BatchLoader:
    """Batches of normalised float32 images (B x 3 x R x R) and int64 labels from uint8 tensors.

    All work is done per batch on tensors: one gather applies the random crop
    (zero padding of `pad` pixels, default 1/8 of the stored size) and the
    horizontal flip, then a single conversion to float, resize to `resolution`
    and normalisation. The uint8 data is moved to `device` once so that an
    accelerator does the float work. Shuffling uses a generator seeded from
    (`seed`, `epoch`), so a run is reproducible and can resume by setting `epoch`.
    """

    def __init__(self, x: Tensor, y: Tensor, batch_size: int = 128, *, resolution: int | None = None,
                 train: bool = False, seed: int = 0, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None, pad: int | None = None, flip: bool = True,
                 drop_last: bool | None = None, channels_last: bool = False,
                 device: str | torch.device = "cpu") -> None:
        if x.dtype != torch.uint8 or x.dim() != 4 or len(x) != len(y):
            raise ValueError(f"expected uint8 N x C x H x W images and N labels, got {tuple(x.shape)} "
                             f"{x.dtype} and {tuple(y.shape)}")
        if batch_size < 1 or (resolution is not None and resolution < 1):
            raise DataError(f"batch size and resolution must be positive, got {batch_size} and {resolution}")
        if mean is None or std is None:
            mean, std = channel_mean_std(x)
        self.device = torch.device(device)
        self.x, self.y = x.to(self.device), y.to(self.device)
        self.batch_size, self.train, self.seed, self.epoch = batch_size, train, seed, 0
        self.resolution = resolution or int(x.shape[-1])
        self.pad = (round(x.shape[-1] / 8) if pad is None else pad) if train else 0
        self.flip = flip and train
        self.drop_last = train if drop_last is None else drop_last
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        std_t = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        self._scale = 1 / (255 * std_t)
        self._shift = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, -1, 1, 1) / std_t

    def __len__(self) -> int:
        n = len(self.x)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        self.epoch += 1
        n = len(self.x)
        order = torch.randperm(n, generator=gen) if self.train else torch.arange(n)
        order = order.to(self.device)
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            xb = self.x[idx]
            if self.pad or self.flip:
                xb = self._crop_flip(xb, gen)
            yield self._to_float(xb), self.y[idx]

    def _crop_flip(self, x: Tensor, gen: torch.Generator) -> Tensor:
        """Random translation within the zero padding plus random mirroring, as one gather."""
        b, c, h, w = x.shape
        p = self.pad
        padded = F.pad(x, (p, p, p, p)) if p else x
        offsets = torch.randint(0, 2 * p + 1, (2, b, 1), generator=gen).to(self.device)
        rows = offsets[0] + torch.arange(h, device=self.device)
        cols = offsets[1] + torch.arange(w, device=self.device)
        if self.flip:
            mirror = (torch.rand(b, 1, generator=gen) < 0.5).to(self.device)
            cols = torch.where(mirror, cols.flip(1), cols)
        flat = (rows[:, :, None] * (w + 2 * p) + cols[:, None, :]).view(b, 1, h * w).expand(b, c, h * w)
        return padded.flatten(2).gather(2, flat).view(b, c, h, w)

    def _to_float(self, x: Tensor) -> Tensor:
        """Convert to float, resize to the requested resolution and normalise."""
        r = self.resolution
        resize = dict(size=(r, r), mode="bilinear", align_corners=False,
                      antialias=r < x.shape[-1] or r < x.shape[-2])
        if x.shape[-2:] != (r, r) and x.device.type == "cpu":
            # torch's uint8 channels-last bilinear kernel is its fastest on CPU (2-4x float); CPU only
            x = F.interpolate(x.contiguous(memory_format=torch.channels_last), **resize)
        out = x.to(dtype=torch.float32, memory_format=self.memory_format)
        if out.shape[-2:] != (r, r):
            out = F.interpolate(out, **resize)
        return out.mul_(self._scale).sub_(self._shift).contiguous(memory_format=self.memory_format)


def make_loaders(data: InMemoryData, batch_size: int = 128, resolution: int | None = None, *,
                 seed: int = 0, train_indices: Tensor | None = None, test_indices: Tensor | None = None,
                 channels_last: bool = False, device: str | torch.device = "cpu",
                 augment: bool = True) -> tuple[BatchLoader, BatchLoader]:
    """Train (shuffled, drop_last, augmented unless `augment` is False) and test loaders
    normalised with the train statistics.

    Augmentation is a random shift within 1/8 zero padding plus a flip where `data.hflip`
    allows it; `train_indices` / `test_indices` (e.g. from
    `stratified_subset`) restrict either split to a subset.
    """
    mean, std = data.mean_std()
    x, y = data.train_x, data.train_y
    if train_indices is not None:
        x, y = x[train_indices], y[train_indices]
    tx, ty = data.test_x, data.test_y
    if test_indices is not None:
        tx, ty = tx[test_indices], ty[test_indices]
    common = dict(resolution=resolution, mean=mean, std=std, channels_last=channels_last, device=device)
    aug = {} if augment else {"pad": 0}
    return (BatchLoader(x, y, batch_size, train=True, seed=seed, flip=data.hflip and augment, **aug, **common),
            BatchLoader(tx, ty, batch_size, train=False, **common))


# --------------------------------------------------------------------------- measurements

def loader_throughput(resolution: int, stored_size: int = 32, batch_size: int = 128, n_images: int = 20_000,
                      train: bool = True, channels_last: bool = False, device: str = "cpu") -> float:
    """Images/s of one BatchLoader epoch over random uint8 images (after one warm-up epoch)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n_images, 3, stored_size, stored_size), dtype=torch.uint8, generator=gen)
    y = torch.randint(0, 10, (n_images,), generator=gen)
    loader = BatchLoader(x, y, batch_size, resolution=resolution, train=train, channels_last=channels_last,
                         mean=(0.5,) * 3, std=(0.25,) * 3, device=device)
    for _ in loader:
        pass
    start = time.perf_counter()
    seen = sum(len(yb) for _, yb in loader)
    if loader.device.type == "cuda":
        torch.cuda.synchronize()
    return seen / (time.perf_counter() - start)


def _accuracy(model: torch.nn.Module, loader: BatchLoader) -> float:
    model.eval()
    correct = seen = 0
    with torch.no_grad():
        for xb, yb in loader:
            correct += (model(xb).argmax(1) == yb).sum().item()
            seen += len(yb)
    return correct / seen


def _fit_model(model: torch.nn.Module, train: BatchLoader, test: BatchLoader, epochs: int, lr: float,
               weight_decay: float, label: str) -> float:
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    start = time.perf_counter()
    acc = 0.0
    for epoch in range(epochs):
        model.train()
        for xb, yb in train:
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(xb), yb).backward()
            opt.step()
        acc = _accuracy(model, test)
        print(f"{label} epoch {epoch + 1}: test accuracy {acc:.3f} "
              f"(train {_accuracy(model, train):.3f}, {time.perf_counter() - start:.0f} s)", flush=True)
    return acc


def synthetic_baselines(seed: int = 0, linear_epochs: int = 15, cnn_epochs: int = 5) -> dict[str, float]:
    """Test accuracy of a linear classifier and a small CNN on the default synthetic dataset.

    Documents that the task is not linearly separable while a CNN learns it.
    Both models see normalised raw pixels without augmentation (batch 256 and 128).
    """
    torch.manual_seed(seed)
    start = time.perf_counter()
    data = make_synthetic(seed=seed)
    print(f"synthetic 20k + 4k generated in {time.perf_counter() - start:.2f} s", flush=True)
    mean, std = data.mean_std()

    def loaders(batch_size: int) -> tuple[BatchLoader, BatchLoader]:
        kw = dict(mean=mean, std=std, seed=seed)
        return (BatchLoader(data.train_x, data.train_y, batch_size, train=True, pad=0, flip=False, **kw),
                BatchLoader(data.test_x, data.test_y, 1000, **kw))

    linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, data.num_classes))
    lin_acc = _fit_model(linear, *loaders(256), linear_epochs, 1e-3, 1e-4, "linear")

    def block(cin: int, cout: int) -> torch.nn.Module:
        return torch.nn.Sequential(torch.nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                                   torch.nn.BatchNorm2d(cout), torch.nn.ReLU(), torch.nn.MaxPool2d(2))

    cnn = torch.nn.Sequential(block(3, 32), block(32, 64), block(64, 128), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(128, data.num_classes))
    cnn_acc = _fit_model(cnn, *loaders(128), cnn_epochs, 2e-3, 0.0, "cnn")
    return {"linear": lin_acc, "cnn": cnn_acc}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mfsearch.data",
                                description="Measure the data layer: loader speed, synthetic baselines, "
                                            "dataset load time.")
    p.add_argument("--bench", action="store_true", help="BatchLoader images/s at 32 and 64 px")
    p.add_argument("--baselines", action="store_true", help="linear vs small-CNN accuracy on synthetic")
    p.add_argument("--load", metavar="NAME", help="load a dataset and report its shape and load time")
    p.add_argument("--data-root")
    p.add_argument("--cache-dir")
    p.add_argument("--download", action="store_true")
    p.add_argument("--image-size", type=int)
    p.add_argument("--threads", type=int, default=2, help="torch threads for the measurements")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        if args.load:
            start = time.perf_counter()
            data = load_dataset(args.load, args.data_root, args.download, cache_dir=args.cache_dir,
                                image_size=args.image_size)
            print(f"{data.name}: train {tuple(data.train_x.shape)}, test {tuple(data.test_x.shape)}, "
                  f"{data.num_classes} classes, loaded in {time.perf_counter() - start:.2f} s")
        if args.bench:
            print(f"BatchLoader, batch 128, {args.threads} threads, images/s over one epoch of 20k images")
            for stored, res in ((32, 32), (32, 64), (64, 64), (64, 32)):
                for train, channels_last in ((True, False), (True, True), (False, False)):
                    ips = loader_throughput(res, stored, train=train, channels_last=channels_last)
                    mode = ("train" if train else "eval") + (" channels_last" if channels_last else "")
                    print(f"stored {stored:>3} px -> {res:>3} px  {mode:<19} {ips:9.0f} img/s")
        if args.baselines:
            print(synthetic_baselines())
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
