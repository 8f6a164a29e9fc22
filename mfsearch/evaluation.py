"""Top-1 accuracy of a classifier over a loader; a leaf module shared by the trainer and the data tools."""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager

import torch
from torch import Tensor, nn


def accuracy(model: nn.Module, loader: Iterable[tuple[Tensor, Tensor]],
             autocast: Callable[[], AbstractContextManager] | None = None) -> float:
    """Top-1 accuracy in percent over the (x, y) batches of `loader`, in eval mode without gradients.

    `autocast` makes the context (e.g. bf16 autocast) the forward passes run in.
    """
    model.eval()
    correct = total = 0
    with torch.no_grad(), (autocast or contextlib.nullcontext)():
        for x, y in loader:
            correct += (model(x).argmax(1) == y).sum().item()
            total += len(y)
    return 100.0 * correct / max(total, 1)
