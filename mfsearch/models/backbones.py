"""Each family's backbone adapter for detection: the model cut into a multi-scale feature
extractor (the `backbone` hook of its `Family`; `mfsearch.detection.create_backbone` calls it).

A backbone's forward gives an ordered dict of feature maps, one per requested output
stride (keys `c3`, `c4`, `c5` for strides 8, 16, 32), and exposes `out_channels` (one
per map, in that order) and `out_strides`. Each map is the last layer's output at its
stride (the end of the stage, as ResNet backbones give C3-C5); layers past the deepest
requested stride are not built.

- Mobile-Former: the stem and blocks of `MobileFormer` under the same parameter names, so
  a classification checkpoint's weights load unchanged; with `return_tokens=True` the
  dict also holds `tokens` (B x M x d) after the last kept block, for DETR-style heads.
- MobileNetV3: torchvision's `IntermediateLayerGetter` (the utility its detection
  `BackboneWithFPN` wraps) over torchvision's MobileNetV3 `features`, with the strides read
  from torchvision's own markers of strided blocks (`_is_cn`). At stride 32 that is
  torchvision's last layer (the 1x1 expansion to 960 channels), as in its detection models.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import TYPE_CHECKING

from torch import Tensor, nn
from torchvision.models._utils import IntermediateLayerGetter

if TYPE_CHECKING:
    from .config import MobileFormerConfig, MobileNetV3Config

DEFAULT_STRIDES = (8, 16, 32)


def _level(stride: int) -> str:
    return f"c{int(math.log2(stride))}"


def _pick_layers(layer_strides: list[int], out_strides: tuple[int, ...], what: str) -> list[int]:
    """Index of the last layer at each requested stride; a stride the model never reaches is an error."""
    if not out_strides or list(out_strides) != sorted(set(out_strides)):
        raise ValueError(f"out_strides must be increasing and distinct, got {out_strides}")
    picks = []
    for s in out_strides:
        at = [i for i, ls in enumerate(layer_strides) if ls == s]
        if not at:
            raise ValueError(f"{what} has feature maps at strides {sorted(set(layer_strides))}, not {s}; "
                             f"choose out_strides among them")
        picks.append(at[-1])
    return picks


class MobileFormerBackbone(nn.Module):
    """Stem, global tokens and blocks of a Mobile-Former, returning maps at `out_strides`."""

    def __init__(self, cfg: MobileFormerConfig, out_strides: tuple[int, ...] = DEFAULT_STRIDES,
                 return_tokens: bool = False):
        super().__init__()
        if return_tokens and not cfg.former:
            raise ValueError("this config has no Former, hence no tokens to return; use return_tokens=False")
        picks = _pick_layers(cfg.row_strides(), tuple(out_strides), "this Mobile-Former")
        full = cfg.build(num_classes=1)   # the classifier's own modules, so parameter names match a checkpoint
        self.config, self.out_strides, self.return_tokens = cfg, tuple(out_strides), return_tokens
        self.stem, self.tokens = full.stem, full.tokens
        self.blocks = nn.ModuleList(list(full.blocks)[:picks[-1] + 1])
        self._returns = {i: _level(s) for i, s in zip(picks, out_strides)}
        rows = cfg.expanded_rows()
        self.out_channels = [rows[i][2] for i in picks]

    def forward(self, x: Tensor) -> OrderedDict[str, Tensor]:
        z = self.tokens.unsqueeze(0).expand(x.shape[0], -1, -1) if self.tokens is not None else None
        x = self.stem(x)
        out: OrderedDict[str, Tensor] = OrderedDict()
        for i, block in enumerate(self.blocks):
            x, z = block(x, z)
            if i in self._returns:
                out[self._returns[i]] = x
        if self.return_tokens:
            out["tokens"] = z
        return out

    def classifier_key(self, key: str) -> str:
        return key   # same names as in MobileFormer


class MobileNetV3Backbone(nn.Module):
    """torchvision MobileNetV3 `features` cut at the requested strides."""

    def __init__(self, cfg: MobileNetV3Config, out_strides: tuple[int, ...] = DEFAULT_STRIDES,
                 return_tokens: bool = False):
        super().__init__()
        if return_tokens:
            raise ValueError("MobileNetV3 has no global tokens; use return_tokens=False")
        features = cfg.build(num_classes=1).features
        strides, s = [], 1
        for i, layer in enumerate(features):
            # the stem conv, then torchvision's marker of its strided blocks
            s *= 2 if i == 0 or getattr(layer, "_is_cn", False) else 1
            strides.append(s)
        picks = _pick_layers(strides, tuple(out_strides), f"MobileNetV3-{cfg.variant}")
        self.config, self.out_strides, self.return_tokens = cfg, tuple(out_strides), False
        self.body = IntermediateLayerGetter(features, {str(i): _level(st) for i, st in zip(picks, out_strides)})
        self.out_channels = [features[i].out_channels for i in picks]

    def forward(self, x: Tensor) -> OrderedDict[str, Tensor]:
        return self.body(x)

    def classifier_key(self, key: str) -> str:
        return "features." + key.removeprefix("body.")
