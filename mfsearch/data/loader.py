"""Batches from in-memory uint8 tensors: the vectorised `BatchLoader` and `make_loaders`."""
from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .core import DataError, InMemoryData, channel_mean_std


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
