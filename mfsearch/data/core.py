"""Shared pieces of the data layer: the error type, the in-memory dataset and per-class index sampling."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..common import UsageError


class DataError(UsageError):
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
    test_masks: Tensor | None = None   # N x H x W bool, the labelled objects' pixels (built-in data only)
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


def _pick_per_class(y: Tensor, count: Callable[[int], int], seed: int) -> Tensor:
    """Sorted indices of `count(n_c)` random examples of every class c, seeded."""
    y = y.cpu()
    g = torch.Generator().manual_seed(seed)
    picks = []
    for c in torch.unique(y):
        idx = (y == c).nonzero().flatten()
        picks.append(idx[torch.randperm(len(idx), generator=g)[:count(len(idx))]])
    return torch.cat(picks).sort().values


def _rounded(fraction: float, n: int) -> int:
    return math.floor(fraction * n + 0.5)  # half rounds up, unlike round()


def stratified_subset(y: Tensor, fraction: float, seed: int) -> Tensor:
    """Sorted indices keeping round(fraction * n_c) (at least 1) random examples of every class c.

    Per-class proportions keep the class balance of small proxy subsets equal
    to the full set's; the same (y, fraction, seed) always gives the same subset.
    """
    if not 0 < fraction <= 1:  # also rejects NaN
        raise DataError(f"subset fraction must be in (0, 1], got {fraction}")
    return _pick_per_class(y, lambda n: max(1, _rounded(fraction, n)), seed)


def stratified_split(y: Tensor, test_fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """Sorted (train, test) indices holding out round(test_fraction * n_c) random examples of every class c.

    At least one and at most n_c - 1 examples of a class are held out, so a class
    with two or more examples is in both splits. Same arguments, same split.
    """
    if not 0 < test_fraction < 1:  # also rejects NaN
        raise DataError(f"test split must be in (0, 1), got {test_fraction}")
    test = _pick_per_class(y, lambda n: min(n - 1, max(1, _rounded(test_fraction, n))), seed)
    train = torch.ones(len(y), dtype=torch.bool)
    train[test] = False
    return train.nonzero().flatten(), test
