"""A short detection protocol: `train_detector(backbone, data, DetectionProtocol(), seed)`.

AdamW with linear warm-up and cosine decay, gradient clipping, horizontal flips; images
enter at their stored size (the detector's transform resizes the short side to
`image_size`). Before evaluation the backbone's BatchNorm statistics are recomputed on
training batches, as the classification proxy does (torchvision's MobileNetV3 keeps
momentum 0.01, so its running statistics would otherwise lag a short run). The result
carries COCO AP/AP50/AP75 on the test split, MAdds of backbone, FPN and head, and times.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..train import recalibrate_bn, warmup_cosine
from .backbone import create_backbone
from .data import DetectionData, DetectionSplit
from .detector import KINDS, build_detector, detector_flops
from .metrics import coco_map

PROGRESS_EVERY_S = 15.0


@dataclass(frozen=True)
class DetectionProtocol:
    kind: str = "retinanet"
    epochs: int = 6
    batch_size: int = 16
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.1
    grad_clip: float = 10.0
    image_size: int = 128          # short side after the detector's resize (and the long side's cap)
    fpn_channels: int = 64
    hflip: bool = True
    bn_recal_batches: int = 8

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown detector kind {self.kind!r}; choose {' or '.join(KINDS)}")
        if self.epochs < 1 or self.batch_size < 2 or self.lr <= 0 or self.weight_decay < 0:
            raise ValueError("need epochs >= 1, batch_size >= 2, lr > 0 and weight_decay >= 0")
        if self.image_size < 32 or self.fpn_channels < 1:
            raise ValueError(f"need image_size >= 32 and fpn_channels >= 1, got {self.image_size}, "
                             f"{self.fpn_channels}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class DetectionResult:
    status: str = "complete"                 # complete | failed
    AP: float | None = None
    AP50: float | None = None
    AP75: float | None = None
    train_loss: list[float] = field(default_factory=list)   # mean per epoch
    first_loss: float | None = None          # mean over the first 10 steps
    flops: dict[str, int] = field(default_factory=dict)      # backbone, fpn, head, total at image_size
    params: dict[str, int] = field(default_factory=dict)
    train_time: float = 0.0
    wall_time: float = 0.0
    images_per_s: float = 0.0
    error: str | None = None


def _batch(split: DetectionSplit, idx: list[int], flip: Tensor | None) -> tuple[list[Tensor], list[dict]]:
    images, targets = [], []
    for j, i in enumerate(idx):
        img, tgt = split.images[i].float().div_(255), dict(split.targets[i])
        if flip is not None and bool(flip[j]):
            w = img.shape[-1]
            img = img.flip(-1)
            b = tgt["boxes"]
            tgt["boxes"] = torch.stack([w - b[:, 2], b[:, 1], w - b[:, 0], b[:, 3]], dim=1)
        images.append(img)
        targets.append(tgt)
    return images, targets


def _params(det: nn.Module) -> dict[str, int]:
    count = lambda m: sum(p.numel() for p in m.parameters())   # noqa: E731
    return {"backbone": count(det.backbone.body), "fpn": count(det.backbone.fpn), "head": count(det.head)}


def make_detector(target: Any, data: DetectionData, protocol: DetectionProtocol,
                  weights: str | Path | None = None) -> nn.Module:
    mean, std = data.mean_std()
    return build_detector(create_backbone(target, weights=weights), protocol.kind, data.num_classes,
                          min_size=protocol.image_size, max_size=protocol.image_size,
                          fpn_channels=protocol.fpn_channels, image_mean=mean, image_std=std)


def train_detector(target: Any, data: DetectionData, protocol: DetectionProtocol | None = None, seed: int = 0,
                   weights: str | Path | None = None, log: Callable[[str], None] | None = None,
                   threads: int | None = None) -> DetectionResult:
    """Build a detector on `target`'s backbone (initialised from `weights` when given), train
    it on data.train and evaluate COCO mAP on data.test. A diverging run ends 'failed'."""
    protocol = protocol or DetectionProtocol()
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _run(target, data, protocol, seed, weights, log)
    finally:
        torch.set_num_threads(previous)


def _run(target, data, protocol, seed, weights, log) -> DetectionResult:
    start = time.perf_counter()
    torch.manual_seed(seed)
    det = make_detector(target, data, protocol, weights)
    res = DetectionResult(flops=detector_flops(det, protocol.image_size), params=_params(det))
    params = [p for p in det.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=protocol.lr, weight_decay=protocol.weight_decay)
    steps = len(data.train) // protocol.batch_size
    if steps == 0:
        res.status, res.error = "failed", "training split smaller than one batch"
        return res
    sched = warmup_cosine(opt, steps * protocol.epochs, protocol.warmup_fraction)
    gen = torch.Generator().manual_seed(seed)
    first, seen = [], 0
    try:
        for epoch in range(protocol.epochs):
            det.train()
            order = torch.randperm(len(data.train), generator=gen).tolist()
            t0 = last = time.perf_counter()
            total = 0.0
            for step in range(steps):
                idx = order[step * protocol.batch_size:(step + 1) * protocol.batch_size]
                flip = torch.rand(len(idx), generator=gen) < 0.5 if protocol.hflip else None
                loss = sum(det(*_batch(data.train, idx, flip)).values())
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"diverged: loss {loss.item()} at epoch {epoch + 1} step {step + 1}")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(params, protocol.grad_clip)
                opt.step()
                sched.step()
                total += loss.item()
                seen += len(idx)
                if len(first) < 10:
                    first.append(loss.item())
                if log and time.perf_counter() - last > PROGRESS_EVERY_S:
                    last = time.perf_counter()
                    log(f"epoch {epoch + 1}/{protocol.epochs} step {step + 1}/{steps} loss {total / (step + 1):.3f}")
            res.train_time += time.perf_counter() - t0
            res.train_loss.append(round(total / steps, 5))
            if log:
                log(f"epoch {epoch + 1}/{protocol.epochs}: loss {res.train_loss[-1]:.3f} "
                    f"({time.perf_counter() - start:.0f} s)")
    except FloatingPointError as exc:
        res.status, res.error = "failed", str(exc)
    res.first_loss = round(sum(first) / len(first), 5) if first else None
    res.images_per_s = round(seen / res.train_time, 2) if res.train_time else 0.0
    if res.status == "complete":
        _recalibrate(det, data.train, protocol)
        res.AP, res.AP50, res.AP75 = (round(v, 3) for v in evaluate_detector(det, data).values())
        if log:
            log(f"AP {res.AP:.2f}, AP50 {res.AP50:.2f}, AP75 {res.AP75:.2f}")
    res.wall_time = round(time.perf_counter() - start, 3)
    return res


def _recalibrate(det: nn.Module, split: DetectionSplit, protocol: DetectionProtocol) -> None:
    n = min(len(split), protocol.batch_size * protocol.bn_recal_batches)
    batches = []
    for s in range(0, n, protocol.batch_size):
        images, _ = _batch(split, list(range(s, min(n, s + protocol.batch_size))), None)
        batches.append(det.transform(images)[0].tensors)
    recalibrate_bn(det.backbone, batches)


@torch.no_grad()
def predict(det: nn.Module, split: DetectionSplit, category_ids: list[int], batch_size: int = 32) -> list[dict]:
    """Detections per test image in COCO terms (image_id, boxes x1y1x2y2, scores, category_ids)."""
    det.eval()
    out = []
    for s in range(0, len(split), batch_size):
        idx = list(range(s, min(len(split), s + batch_size)))
        images, _ = _batch(split, idx, None)
        for i, d in zip(idx, det(images)):
            cats = torch.tensor(category_ids)[d["labels"]] if len(d["labels"]) else d["labels"]
            out.append({"image_id": split.image_ids[i], "boxes": d["boxes"].numpy(), "scores": d["scores"].numpy(),
                        "category_ids": cats.numpy()})
    return out


def evaluate_detector(det: nn.Module, data: DetectionData) -> dict[str, float]:
    """COCO AP, AP50, AP75 (%) of `det` on data.test."""
    gt = data.test.to_coco(data.category_ids, data.classes)
    return coco_map(gt, predict(det, data.test, data.category_ids))
