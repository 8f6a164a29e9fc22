"""The short-proxy trainer: a few epochs on a data subset, one accuracy per architecture.

FLOPs and parameters always describe the architecture at its own resolution with a
1000-class head (the paper's convention, and what the budget caps). The proxy trains
the same architecture with the dataset's class count at a proxy resolution derived
from the architecture's own: `proxy_resolution(r, b) = 4 * round(r * b / 224 / 4)`, where
b is the protocol's `base_resolution` (the size a 224-px design trains at; by default the
dataset's stored size, 32 px on CIFAR) and the result is at least `min_resolution`.
Images are resized per batch, so b may exceed the stored size (upsampling on the fly).

Every evaluation first recalibrates BatchNorm statistics on training batches (as
weight-sharing NAS does): short proxies are otherwise dominated by how fast each
family's running statistics catch up (torchvision's MobileNetV3 uses momentum 0.01
and scores at chance after a few hundred steps), not by its weights.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from .clock import active_seconds
from .common import UsageError
from .data import InMemoryData, make_loaders, stratified_subset
from .evaluation import accuracy as evaluate  # evaluate(model, loader, autocast) -> top-1 %
from .flops import estimate_flops, estimate_params
from .models import ModelConfig, create_model, get_config
from .zero_cost import SCORES, zero_cost_score


class TrialPruned(Exception):
    """Raised by an `on_epoch` callback to stop a trial early; the trainer reports 'pruned'."""


@dataclass(frozen=True)
class ProxyProtocol:
    """Everything about the proxy that is not the architecture (results are tagged with it).

    The defaults are the calibrated protocol (`default` in experiments/proxy_calibration.yaml,
    chosen in the README's calibration section): one pass over the data as 2 epochs on a
    stratified half, half the test split, dropout off, 32 px for a 224-px design."""

    epochs: int = 2
    data_fraction: float = 0.5
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    warmup_fraction: float = 0.1
    bn_recal_batches: int = 5
    test_fraction: float = 0.5       # stratified share of the test split used for validation
    base_resolution: int | None = None   # px a 224-px design trains at (None: the dataset's stored size)
    min_resolution: int = 16         # no candidate trains below this size
    augment: str = "crop_flip"       # crop_flip (random shift within 1/8 padding + flip) | none
    regularization: str = "off"      # off (dropout and stochastic depth at 0: short runs punish them) | as_shipped
    score: str | None = None         # a zero-cost score instead of training (epochs must be 0)
    min_steps: int = 0               # floor in optimiser steps: small datasets train for more epochs

    def __post_init__(self) -> None:
        if self.score is not None:
            if self.score not in SCORES:
                raise ValueError(f"unknown score {self.score!r}; choose one of {', '.join(SCORES)}")
            if self.epochs != 0:
                raise ValueError(f"a zero-cost score ({self.score}) takes epochs: 0, got {self.epochs}")
        elif self.epochs < 1:
            raise ValueError(f"epochs must be at least 1 (or 0 with a zero-cost score), got {self.epochs}")
        if self.augment not in AUGMENTS:
            raise ValueError(f"unknown augment {self.augment!r}; choose one of {', '.join(AUGMENTS)}")
        if self.regularization not in REGULARIZATION:
            raise ValueError(f"unknown regularization {self.regularization!r}; "
                             f"choose one of {', '.join(REGULARIZATION)}")
        if self.base_resolution is not None and not 8 <= self.base_resolution <= 512:
            raise ValueError(f"base resolution must be in [8, 512] px, got {self.base_resolution}")
        if not 8 <= self.min_resolution <= 512:
            raise ValueError(f"min resolution must be in [8, 512] px, got {self.min_resolution}")
        if not 0 < self.data_fraction <= 1:
            raise ValueError(f"data fraction must be in (0, 1], got {self.data_fraction}")
        if not 0 < self.test_fraction <= 1:
            raise ValueError(f"test fraction must be in (0, 1], got {self.test_fraction}")
        if self.min_steps < 0:
            raise ValueError(f"min steps must be >= 0, got {self.min_steps}")
        if self.batch_size < 2 or self.lr <= 0 or self.weight_decay < 0:
            raise ValueError("batch size must be >= 2, lr > 0 and weight decay >= 0")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ProxyProtocol:
        """A stored protocol; fields it predates take the value that reproduces what it ran
        (not today's default: dropout was as shipped before `regularization` existed)."""
        return cls(**{**BEFORE_THE_FIELD, **d})

    @classmethod
    def of_row(cls, row: dict) -> ProxyProtocol:
        """The protocol a result row trained under (its stored JSON, read as `from_dict` does, so
        a row from before a field compares equal to the protocol it ran)."""
        return cls.from_dict(json.loads(row["protocol"]))

    def epochs_for(self, steps_per_epoch: int) -> int:
        """Epochs to train: `epochs`, or more when that many passes would take fewer than `min_steps` steps."""
        if self.min_steps and steps_per_epoch:
            return max(self.epochs, math.ceil(self.min_steps / steps_per_epoch))
        return self.epochs

    def resolution_for(self, arch_resolution: int, stored_size: int) -> int:
        return proxy_resolution(arch_resolution, self.base_resolution or stored_size, self.min_resolution)


# what a protocol stored before each of these fields existed did
BEFORE_THE_FIELD = {"base_resolution": None, "min_resolution": 16, "augment": "crop_flip",
                    "regularization": "as_shipped", "score": None, "min_steps": 0}
AUGMENTS = ("crop_flip", "none")
REGULARIZATION = ("as_shipped", "off")


@dataclass
class ProxyResult:
    status: str                       # complete | pruned | failed
    top1: list[float] = field(default_factory=list)        # validation top-1 (%) per epoch
    train_loss: list[float] = field(default_factory=list)  # mean training loss per epoch
    final_top1: float | None = None
    best_top1: float | None = None
    images_per_s: float = 0.0         # training throughput (evaluation excluded)
    wall_time: float = 0.0            # whole call, set-up and evaluation included, time stopped left out
    train_time: float = 0.0
    flops: int = 0                    # at the architecture's resolution, 1000 classes
    params: int = 0                   # 1000-class head
    proxy_resolution: int = 0
    epochs_done: int = 0
    error: str | None = None
    score: float | None = None        # what ranks the architecture: final top-1, or the zero-cost score
    images_seen: int = 0
    num_classes: int = 0              # of the dataset: chance is 100 / num_classes %
    threads: int = 0                  # torch's CPU threads while it trained: the wall times depend on them
    device: str = ""                  # what it trained on (cpu, cuda:0): the times depend on it, the numbers slightly
    state_dict: dict | None = field(default=None, repr=False)   # trained weights (CPU), when asked for


def planned_epochs(data: InMemoryData, protocol: ProxyProtocol, seed: int = 0) -> int:
    """Epochs a training under `protocol` runs on `data`, the step floor included (what a
    pruner must treat as the last epoch)."""
    n = len(stratified_subset(data.train_y, protocol.data_fraction, seed)) if protocol.data_fraction < 1 \
        else len(data.train_y)
    return protocol.epochs_for(n // protocol.batch_size)   # the training loader drops the last partial batch


def check_device(device: str) -> None:
    """A UsageError unless `device` names one train_proxy takes (cpu, cuda, cuda:N, auto)."""
    if device not in ("cpu", "cuda", "auto") and not device.startswith("cuda:"):
        raise UsageError(f"unknown device {device!r}; use cpu, cuda, cuda:N or auto")


def resolve_device(device: str) -> str:
    """The device to train on: `auto` is CUDA where torch sees it, else the CPU; a CUDA
    device on a machine without one is a UsageError that says what to pass instead."""
    check_device(device)
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {device} asked for, but torch sees no CUDA device; use --device cpu")
    return device


def device_label(dev: torch.device) -> str:
    """What a row records as its device: 'cpu', or 'cuda:N' with the index made explicit."""
    if dev.type != "cuda":
        return dev.type
    return f"cuda:{dev.index if dev.index is not None else torch.cuda.current_device()}"


def device_name(device: str) -> str:
    """A run.json's account of a resolved device: 'cpu', or 'cuda:0 NVIDIA H200' (the model too)."""
    label = device_label(torch.device(device))
    return label if label == "cpu" else f"{label} {torch.cuda.get_device_name(label)}"


def proxy_resolution(arch_resolution: int, base: int, floor: int = 16) -> int:
    """Training size of an `arch_resolution` design when a 224-px one trains at `base` px."""
    return max(floor, 4 * round(arch_resolution * base / 224 / 4))


def remove_regularization(model: nn.Module) -> None:
    """Dropout (and torchvision's stochastic depth) to zero, for protocols too short to want them."""
    for m in model.modules():
        if isinstance(m, (nn.Dropout, nn.Dropout2d)) or type(m).__name__ == "StochasticDepth":
            m.p = 0.0


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


def warmup_cosine(opt: torch.optim.Optimizer, total_steps: int, warmup_fraction: float):
    """Linear warm-up over `warmup_fraction` of the steps, then cosine decay to 0; stepped per batch."""
    warmup = max(1, int(warmup_fraction * total_steps))

    def factor(s: int) -> float:
        if s < warmup:
            return (s + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (s - warmup) / max(1, total_steps - warmup)))
    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def _optimizer(model: nn.Module, protocol: ProxyProtocol, total_steps: int, dev: torch.device):
    """AdamW with linear warmup then cosine decay, stepped once per batch."""
    opt = torch.optim.AdamW(model.parameters(), lr=protocol.lr, weight_decay=protocol.weight_decay,
                            fused=dev.type in ("cpu", "cuda"))
    return opt, warmup_cosine(opt, total_steps, protocol.warmup_fraction)


def _autocast(dev: torch.device):
    """bf16 on CUDA; on CPU fp32, since CPU bf16 autocast measured slower here."""
    if dev.type == "cuda":
        return lambda: torch.autocast("cuda", dtype=torch.bfloat16)
    return lambda: torch.autocast("cpu", enabled=False)


def _train_epoch(model, loader, opt, sched, protocol, autocast, epoch, epochs, log, result) -> list[torch.Tensor]:
    """One pass over `loader`; returns the first batches, kept for BatchNorm recalibration."""
    model.train()
    t0 = last = active_seconds()
    loss_sum, seen, recal = 0.0, 0, []
    for step, (x, y) in enumerate(loader):
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
        if log and active_seconds() - last > PROGRESS_EVERY_S:
            last = active_seconds()
            log(f"epoch {epoch + 1}/{epochs} step {step + 1}/{len(loader)} "
                f"loss {loss_sum / (step + 1):.3f} ({seen / (last - t0):.0f} img/s)")
    result.train_time += active_seconds() - t0
    result.images_seen += seen
    result.train_loss.append(round(loss_sum / len(loader), 5))
    return recal


PROGRESS_EVERY_S = 15.0


def train_proxy(config: ModelConfig | str, data: InMemoryData, protocol: ProxyProtocol | None = None,
                *, resolution: int | None = None, seed: int = 0, device: str = "cpu",
                threads: int | None = None, on_epoch: Callable[[int, float], None] | None = None,
                log: Callable[[str], None] | None = None, keep_weights: bool = False) -> ProxyResult:
    """Train `config` under the proxy protocol (or score it, for a zero-cost protocol).

    `resolution` overrides the derived proxy resolution. `on_epoch(epoch, top1)` runs
    after each evaluation and may raise `TrialPruned`. `log` receives a progress line
    every few seconds and one per epoch. A diverging run (non-finite loss) ends as
    'failed' with the reason instead of raising. `threads` applies for this call only.
    `keep_weights` returns a complete run's trained weights in `result.state_dict`.
    """
    previous_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _train(get_config(config), data, protocol or ProxyProtocol(), resolution, seed,
                      torch.device(device), on_epoch, log, keep_weights)
    finally:
        torch.set_num_threads(previous_threads)


def _train(cfg, data, protocol, resolution, seed, dev, on_epoch, log, keep_weights=False) -> ProxyResult:
    start = active_seconds()
    res = resolution or protocol.resolution_for(cfg.resolution, data.image_size)
    result = ProxyResult(status="complete", flops=estimate_flops(cfg), params=estimate_params(cfg),
                         proxy_resolution=res, num_classes=data.num_classes, threads=torch.get_num_threads(),
                         device=device_label(dev))
    torch.manual_seed(seed)
    channels_last = dev.type == "cpu"
    model = create_model(cfg, num_classes=data.num_classes).to(dev)
    if protocol.regularization == "off":
        remove_regularization(model)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    subset = stratified_subset(data.train_y, protocol.data_fraction, seed) if protocol.data_fraction < 1 else None
    test_subset = stratified_subset(data.test_y, protocol.test_fraction, seed) \
        if protocol.test_fraction < 1 else None
    train_loader, test_loader = make_loaders(data, protocol.batch_size, res, seed=seed, train_indices=subset,
                                             test_indices=test_subset, channels_last=channels_last, device=dev,
                                             augment=protocol.augment == "crop_flip")
    if protocol.score is not None:
        try:
            result.score = zero_cost_score(protocol.score, model, train_loader, result)
        except (ValueError, RuntimeError, StopIteration) as exc:  # e.g. no activation to code, empty subset
            result.status, result.error = "failed", f"{protocol.score}: {exc}"
        result.wall_time = round(active_seconds() - start, 3)
        return result
    if len(train_loader) == 0:
        result.status, result.error = "failed", "training subset smaller than one batch"
        return result
    epochs = protocol.epochs_for(len(train_loader))
    opt, sched = _optimizer(model, protocol, len(train_loader) * epochs, dev)
    autocast = _autocast(dev)
    try:
        for epoch in range(epochs):
            recal = _train_epoch(model, train_loader, opt, sched, protocol, autocast, epoch, epochs, log, result)
            recalibrate_bn(model, recal)
            top1 = evaluate(model, test_loader, autocast)
            result.top1.append(round(top1, 3))
            result.epochs_done = epoch + 1
            if log:
                log(f"epoch {epoch + 1}/{epochs}: top-1 {top1:.2f}% "
                    f"({active_seconds() - start:.0f} s)")
            if on_epoch:
                on_epoch(epoch, top1)
    except TrialPruned:
        result.status = "pruned"
    except FloatingPointError as exc:
        result.status, result.error = "failed", str(exc)
    if result.top1:
        result.final_top1, result.best_top1 = result.top1[-1], max(result.top1)
        result.score = result.final_top1
    result.images_per_s = round(result.images_seen / result.train_time, 2) if result.train_time else 0.0
    if keep_weights and result.status == "complete":
        result.state_dict = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}
    result.wall_time = round(active_seconds() - start, 3)
    return result
