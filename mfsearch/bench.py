"""Train-step throughput benchmark: Mobile-Former against MobileNetV3.

    mfsearch bench [--models mobile_former_151m mobilenet_v3_large_075]
                   [--resolutions 32 64] [--batch 64] [--threads 2] [--steps 12]

Both models train (forward, backward, AdamW step) on random data in one process;
steps alternate between the models so machine noise hits both alike, and the
median images/s of the timed steps is reported with the ratio to the last model.
"""
from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F

from .models import create_model


def _step_fn(model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor):
    def step() -> float:
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()
        return time.perf_counter() - t
    return step


def benchmark(models: list[str], resolution: int, batch: int, steps: int, warmup: int = 3,
              num_classes: int = 10, channels_last: bool = True) -> dict[str, float]:
    """Median training images/s of each model, timed in interleaved steps."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, resolution, resolution, generator=gen).contiguous(memory_format=fmt)
    y = torch.randint(0, num_classes, (batch,), generator=gen)
    fns = {}
    for name in models:
        model = create_model(name, num_classes=num_classes).to(memory_format=fmt).train()
        fns[name] = _step_fn(model, torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True), x, y)
    times: dict[str, list[float]] = {n: [] for n in models}
    for i in range(warmup + steps):
        for name in models:
            dt = fns[name]()
            if i >= warmup:
                times[name].append(dt)
    return {n: batch / statistics.median(t) for n, t in times.items()}
