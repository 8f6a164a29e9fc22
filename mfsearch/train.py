"""The short-proxy trainer: a few epochs on a data subset, one accuracy per architecture.

FLOPs and parameters always describe the architecture at its own resolution with a
1000-class head (the paper's convention, and what the budget caps). The proxy trains
the same architecture with the dataset's class count at a proxy resolution derived
from the architecture's own: `proxy_resolution(r, s) = 4 * round(r * s / 224 / 4)`
(at least 16) for a dataset stored at s px, so a 224-px design trains at the dataset's
native size (32 px on CIFAR) and resolution stays a meaningful dimension.

Every evaluation first recalibrates BatchNorm statistics on training batches (as
weight-sharing NAS does): short proxies are otherwise dominated by how fast each
family's running statistics catch up (torchvision's MobileNetV3 uses momentum 0.01
and scores at chance after a few hundred steps), not by its weights.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from .data import InMemoryData, make_loaders, stratified_subset
from .flops import estimate_flops, estimate_params
from .models import ModelConfig, create_model, get_config


class TrialPruned(Exception):
    """Raised by an `on_epoch` callback to stop a trial early; the trainer reports 'pruned'."""


@dataclass(frozen=True)
class ProxyProtocol:
    """Everything about the proxy that is not the architecture (results are tagged with it)."""

    epochs: int = 3
    data_fraction: float = 0.25
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    warmup_fraction: float = 0.1
    bn_recal_batches: int = 5
    test_fraction: float = 1.0       # stratified share of the test split used for validation

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if not 0 < self.data_fraction <= 1:
            raise ValueError(f"data fraction must be in (0, 1], got {self.data_fraction}")
        if not 0 < self.test_fraction <= 1:
            raise ValueError(f"test fraction must be in (0, 1], got {self.test_fraction}")
        if self.batch_size < 2 or self.lr <= 0 or self.weight_decay < 0:
            raise ValueError("batch size must be >= 2, lr > 0 and weight decay >= 0")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ProxyResult:
    status: str                       # complete | pruned | failed
    top1: list[float] = field(default_factory=list)        # validation top-1 (%) per epoch
    train_loss: list[float] = field(default_factory=list)  # mean training loss per epoch
    final_top1: float | None = None
    best_top1: float | None = None
    images_per_s: float = 0.0         # training throughput (evaluation excluded)
    wall_time: float = 0.0            # whole call, set-up and evaluation included
    train_time: float = 0.0
    flops: int = 0                    # at the architecture's resolution, 1000 classes
    params: int = 0                   # 1000-class head
    proxy_resolution: int = 0
    epochs_done: int = 0
    error: str | None = None


def proxy_resolution(arch_resolution: int, stored_size: int) -> int:
    return max(16, 4 * round(arch_resolution * stored_size / 224 / 4))


def recalibrate_bn(model: nn.Module, batches: list[torch.Tensor]) -> None:
    """Replace BatchNorm running statistics by exact averages over `batches`."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        for x in batches:
            model(x)
    for m, mom in zip(norms, saved):
        m.momentum = mom


def evaluate(model: nn.Module, loader, autocast: Any) -> float:
    model.eval()
    correct = total = 0
    with torch.no_grad(), autocast():
        for x, y in loader:
            correct += (model(x).argmax(1) == y).sum().item()
            total += len(y)
    return 100.0 * correct / max(total, 1)


def train_proxy(config: ModelConfig | str, data: InMemoryData, protocol: ProxyProtocol | None = None,
                *, resolution: int | None = None, seed: int = 0, device: str = "cpu",
                threads: int | None = None,
                on_epoch: Callable[[int, float], None] | None = None) -> ProxyResult:
    """Train `config` under the proxy protocol and return its metrics.

    `resolution` overrides the derived proxy resolution. `on_epoch(epoch, top1)` runs
    after each evaluation and may raise `TrialPruned`. A diverging run (non-finite
    loss) ends as 'failed' with the reason instead of raising.
    """
    start = time.perf_counter()
    protocol = protocol or ProxyProtocol()
    cfg = get_config(config)
    if threads:
        torch.set_num_threads(threads)
    dev = torch.device(device)
    res = resolution or proxy_resolution(cfg.resolution, data.image_size)
    result = ProxyResult(status="complete", flops=estimate_flops(cfg), params=estimate_params(cfg),
                         proxy_resolution=res)
    torch.manual_seed(seed)
    channels_last = dev.type == "cpu"
    model = create_model(cfg, num_classes=data.num_classes).to(dev)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    subset = stratified_subset(data.train_y, protocol.data_fraction, seed) if protocol.data_fraction < 1 else None
    test_subset = stratified_subset(data.test_y, protocol.test_fraction, seed) \
        if protocol.test_fraction < 1 else None
    train_loader, test_loader = make_loaders(data, protocol.batch_size, res, seed=seed, train_indices=subset,
                                             test_indices=test_subset, channels_last=channels_last, device=dev)
    steps_per_epoch = len(train_loader)
    if steps_per_epoch == 0:
        result.status, result.error = "failed", "training subset smaller than one batch"
        return result
    total_steps = steps_per_epoch * protocol.epochs
    warmup = max(1, int(protocol.warmup_fraction * total_steps))
    opt = torch.optim.AdamW(model.parameters(), lr=protocol.lr, weight_decay=protocol.weight_decay,
                            fused=dev.type in ("cpu", "cuda"))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (s + 1) / warmup if s < warmup else
                                              0.5 * (1 + math.cos(math.pi * (s - warmup) / max(1, total_steps - warmup))))
    if dev.type == "cuda":
        def autocast():
            return torch.autocast("cuda", dtype=torch.bfloat16)
    else:
        def autocast():
            return torch.autocast("cpu", enabled=False)

    seen = 0
    try:
        for epoch in range(protocol.epochs):
            model.train()
            t0, loss_sum, recal = time.perf_counter(), 0.0, []
            for step, (x, y) in enumerate(train_loader):
                with autocast():
                    loss = F.cross_entropy(model(x), y, label_smoothing=protocol.label_smoothing)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"diverged: loss {loss.item()} at epoch {epoch + 1} step {step + 1}")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                loss_sum += loss.item()
                seen += len(y)
                if len(recal) < protocol.bn_recal_batches:
                    recal.append(x)
            result.train_time += time.perf_counter() - t0
            recalibrate_bn(model, recal)
            top1 = evaluate(model, test_loader, autocast)
            result.top1.append(round(top1, 3))
            result.train_loss.append(round(loss_sum / steps_per_epoch, 5))
            result.epochs_done = epoch + 1
            if on_epoch:
                on_epoch(epoch, top1)
    except TrialPruned:
        result.status = "pruned"
    except FloatingPointError as exc:
        result.status, result.error = "failed", str(exc)
    if result.top1:
        result.final_top1, result.best_top1 = result.top1[-1], max(result.top1)
    result.images_per_s = round(seen / result.train_time, 2) if result.train_time else 0.0
    result.wall_time = round(time.perf_counter() - start, 3)
    return result
