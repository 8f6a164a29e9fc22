"""torchvision detectors on an mfsearch backbone: `build_detector(backbone, kind, num_classes, ...)`.

The backbone's maps go through torchvision's `FeaturePyramidNetwork` with two extra levels
(`LastLevelP6P7`, as RetinaNet and FCOS use), then torchvision's `RetinaNet` or `FCOS`
with their own heads, losses, box coding and post-processing. Anchors follow each model's
paper at every pyramid level: RetinaNet 3 scales x 3 aspect ratios of 4 x stride, FCOS one
point per location (size = stride, as torchvision's FCOS). Labels are 0..num_classes-1:
both detectors classify with per-class sigmoids and have no background class.

`detector_flops` counts multiply-adds of backbone, FPN and head with fvcore (the project's
convention, `mfsearch.flops`), at the input size the detector's transform produces.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
from fvcore.nn import FlopCountAnalysis
from torch import Tensor, nn
from torchvision.models.detection import FCOS, RetinaNet
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelP6P7

from .backbone import create_backbone

KINDS = ("retinanet", "fcos")


class BackboneFPN(nn.Module):
    """Backbone maps -> FPN levels; `out_channels` is the FPN's width, as torchvision's detectors expect."""

    def __init__(self, backbone: nn.Module, fpn_channels: int):
        super().__init__()
        self.body = backbone
        self.fpn = FeaturePyramidNetwork(list(backbone.out_channels), fpn_channels,
                                         extra_blocks=LastLevelP6P7(fpn_channels, fpn_channels))
        self.out_channels = fpn_channels
        self.strides = [*backbone.out_strides, backbone.out_strides[-1] * 2, backbone.out_strides[-1] * 4]

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return self.fpn(self.body(x))


def _anchors(kind: str, strides: Sequence[int]) -> AnchorGenerator:
    if kind == "retinanet":   # 2^0, 2^(1/3), 2^(2/3) times 4 x stride, three aspect ratios
        sizes = tuple(tuple(round(4 * s * 2 ** (k / 3)) for k in range(3)) for s in strides)
        return AnchorGenerator(sizes, ((0.5, 1.0, 2.0),) * len(strides))
    return AnchorGenerator(tuple((s,) for s in strides), ((1.0,),) * len(strides))


def build_detector(backbone: Any, kind: str = "retinanet", num_classes: int = 80, min_size: int = 320,
                   max_size: int = 320, fpn_channels: int = 64, image_mean: Sequence[float] | None = None,
                   image_std: Sequence[float] | None = None, **detector_kwargs: Any) -> nn.Module:
    """A torchvision RetinaNet or FCOS on `backbone` (a module from `create_backbone`, or anything
    it accepts). Images are resized so the short side is `min_size` (long side at most
    `max_size`) and normalised with `image_mean`/`image_std` (default ImageNet's); other keyword
    arguments go to the torchvision detector (score_thresh, detections_per_img, ...)."""
    if kind not in KINDS:
        raise ValueError(f"unknown detector kind {kind!r}; choose {' or '.join(KINDS)}")
    if num_classes < 1 or fpn_channels < 1 or min_size < 32 or max_size < min_size:
        raise ValueError(f"need num_classes >= 1, fpn_channels >= 1 and 32 <= min_size <= max_size, got "
                         f"{num_classes}, {fpn_channels}, {min_size}, {max_size}")
    if not isinstance(backbone, nn.Module):
        backbone = create_backbone(backbone)
    if getattr(backbone, "return_tokens", False):
        raise ValueError("the FPN takes feature maps only; build the backbone with return_tokens=False")
    body = BackboneFPN(backbone, fpn_channels)
    cls = RetinaNet if kind == "retinanet" else FCOS
    model = cls(body, num_classes, min_size=min_size, max_size=max_size, anchor_generator=_anchors(kind, body.strides),
                image_mean=list(image_mean) if image_mean else None, image_std=list(image_std) if image_std else None,
                **detector_kwargs)
    model.kind = kind   # type: ignore[attr-defined]
    return model


class _Flat(nn.Module):
    """Calls a module and returns its tensors as a tuple (fvcore traces tuple outputs)."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, *args: Any) -> tuple[Tensor, ...]:
        out = self.module(*args)
        values = out.values() if isinstance(out, dict) else out
        return tuple(values) if not isinstance(values, Tensor) else (values,)


def _fvcore(module: nn.Module, *inputs: Any) -> int:
    log = logging.getLogger("fvcore")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        a = FlopCountAnalysis(_Flat(module), inputs)
        a.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        return int(a.total())
    finally:
        log.setLevel(level)


@torch.no_grad()
def detector_flops(detector: nn.Module, height: int, width: int | None = None) -> dict[str, int]:
    """fvcore multiply-adds of backbone, FPN and head for one image the transform has already
    resized to height x width (eval mode; box decoding and NMS are not counted)."""
    width = width or height
    was = detector.training
    detector.eval()
    try:
        x = torch.zeros(1, 3, height, width)
        body = detector.backbone
        maps = body.body(x)
        levels = list(body.fpn(maps).values())
        out = {"backbone": _fvcore(body.body, x), "fpn": _fvcore(body.fpn, maps),
               "head": _fvcore(detector.head, levels)}
    finally:
        detector.train(was)
    out["total"] = sum(out.values())
    return out
