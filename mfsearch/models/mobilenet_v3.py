"""MobileNetV3 baselines from torchvision's own config and module classes.

torchvision scales every layer by the width multiplier. The published MAdds of the
narrow models (Large-0.75 155M, Small-0.75 44M) come out ~10% above that count, and
scaling only the body while the final layers stay at full width reproduces them:
for width < 1 the last inverted-residual block, the output of the block before it,
the 1x1 conv before pooling and the classifier's hidden layer keep their 1.0 widths.
Measured with fvcore, BatchNorm left out: Large-0.75 153.2M (published 155M),
Small-0.75 44.2M (44M). Widths >= 1 are torchvision's unchanged.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from torchvision.models.mobilenetv3 import InvertedResidualConfig, MobileNetV3, _mobilenet_v3_conf

if TYPE_CHECKING:  # the config builds this module, so it is imported for annotations only
    from .config import MobileNetV3Config


def _with_out(c: InvertedResidualConfig, out_channels: int) -> InvertedResidualConfig:
    """Copy a block config with a new output width (no further scaling)."""
    return InvertedResidualConfig(c.input_channels, c.kernel, c.expanded_channels, out_channels,
                                  c.use_se, "HS" if c.use_hs else "RE", c.stride, c.dilation, 1.0)


def build_mobilenet_v3(cfg: MobileNetV3Config, num_classes: int = 1000) -> MobileNetV3:
    arch = f"mobilenet_v3_{cfg.variant}"
    settings, last_channel = _mobilenet_v3_conf(arch, width_mult=cfg.width_mult)
    if cfg.width_mult < 1.0:
        full, last_channel = _mobilenet_v3_conf(arch, width_mult=1.0)
        settings = list(settings)
        settings[-2] = _with_out(settings[-2], full[-2].out_channels)
        settings[-1] = full[-1]
    model = MobileNetV3(settings, last_channel, num_classes=num_classes, dropout=cfg.dropout)
    model.config = cfg  # type: ignore[attr-defined]
    return model


