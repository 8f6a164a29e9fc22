"""One proposal -> one results row; the only place a search trains anything.

Both backends call `evaluate_params`: decode, closed-form FLOPs against the budget
(over budget -> an 'infeasible' row, never trained), proxy training, row.
"""
from __future__ import annotations

import time
from functools import lru_cache
from typing import Any, Callable

import torch

from ..data import InMemoryData, load_dataset
from ..flops import estimate_flops, estimate_params
from ..train import train_proxy
from .results import make_row, row_from_proxy
from .settings import SearchSettings


def make_space(settings: SearchSettings):
    from spaces import MobileFormerSpace
    if settings.space is None:
        return MobileFormerSpace()
    return MobileFormerSpace.from_dict(settings.space, source=settings.space_file or "space")


@lru_cache(maxsize=2)
def _load(dataset: str, root: str | None, download: bool, seed: int) -> InMemoryData:
    return load_dataset(dataset, root=root, download=download, seed=seed)


def load_data(settings: SearchSettings) -> InMemoryData:
    """The run's dataset, loaded once per process (workers each hold their own copy)."""
    return _load(settings.dataset, settings.data_root, settings.download, settings.seed)


def evaluate_params(settings: SearchSettings, params: dict[str, Any], trial_id: int | str,
                    on_epoch: Callable[[int, float], None] | None = None) -> dict[str, Any]:
    start = time.perf_counter()
    space = make_space(settings)
    params = space.normalize(params)
    cfg = space.decode(params)
    flops = estimate_flops(cfg)
    common = dict(trial_id=trial_id, run=settings.name, backend=settings.backend, family="mobile_former",
                  config=cfg.to_dict(), flops=flops, seed=settings.seed, dataset=settings.dataset,
                  protocol=settings.protocol.to_dict(), **params)
    if flops > settings.budget:
        return make_row(status="infeasible", params=estimate_params(cfg), epochs_done=0,
                        wall_time=round(time.perf_counter() - start, 3),
                        error=f"{flops / 1e6:.1f}M MAdds over the {settings.budget / 1e6:.1f}M budget", **common)
    try:
        result = train_proxy(cfg, load_data(settings), settings.protocol, seed=settings.seed,
                             device=settings.resolved_device(), threads=settings.worker_threads,
                             on_epoch=on_epoch)
    except (RuntimeError, ValueError, MemoryError, torch.cuda.OutOfMemoryError) as exc:
        return make_row(status="failed", params=estimate_params(cfg), epochs_done=0,
                        wall_time=round(time.perf_counter() - start, 3),
                        error=" ".join(f"{type(exc).__name__}: {exc}".split())[:500], **common)
    return row_from_proxy(result, wall_time=round(time.perf_counter() - start, 3), **common)
