"""Multi-scale feature extractors for detection: `create_backbone(name_or_config_or_checkpoint)`.

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
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torchvision.models._utils import IntermediateLayerGetter

from ..models import MobileFormerConfig, MobileNetV3Config, get_config
from ..models.checkpoint import read_checkpoint
from ..models.config import ModelConfig, config_from_dict

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


BACKBONES: dict[str, type[nn.Module]] = {MobileFormerConfig.family: MobileFormerBackbone,
                                          MobileNetV3Config.family: MobileNetV3Backbone}


def load_classifier_weights(backbone: nn.Module, state_dict: dict[str, Tensor], source: str = "the weights") -> int:
    """Copy a classification model's weights into the backbone (every backbone tensor must be
    there with its shape; the head's are ignored); returns how many tensors were loaded."""
    own = backbone.state_dict()
    picked = {}
    for key, value in own.items():
        src = state_dict.get(backbone.classifier_key(key))
        if src is None or src.shape != value.shape:
            raise ValueError(f"{source} do not fit this backbone (first mismatch: {key}); they are for another "
                             "architecture")
        picked[key] = src
    backbone.load_state_dict(picked)
    return len(picked)


def create_backbone(name_or_config: Any, out_strides: tuple[int, ...] = DEFAULT_STRIDES,
                    return_tokens: bool = False, weights: str | Path | None = None) -> nn.Module:
    """A multi-scale backbone from a registered name, a config (or its dict / JSON file), or an
    mfsearch checkpoint (`.pt`, its architecture with its trained weights). `weights` loads a
    classification checkpoint's weights into the backbone of a given architecture."""
    source = weights
    if isinstance(name_or_config, (str, Path)) and str(name_or_config).endswith(".pt"):
        ckpt = read_checkpoint(name_or_config)
        cfg: ModelConfig = config_from_dict(ckpt["config"])
        state, source = (ckpt["state_dict"], name_or_config) if weights is None else (None, weights)
    else:
        cfg, state = get_config(name_or_config), None
    backbone = BACKBONES[cfg.family](cfg, tuple(out_strides), return_tokens)
    if source is not None:
        state = state if state is not None else read_checkpoint(source)["state_dict"]
        load_classifier_weights(backbone, state, f"the weights in {source}")
    return backbone


@torch.no_grad()
def feature_shapes(backbone: nn.Module, height: int, width: int) -> dict[str, tuple[int, ...]]:
    """Shapes of every output for one height x width image (eval mode, the caller's mode restored)."""
    was = backbone.training
    backbone.eval()
    try:
        return {k: tuple(v.shape) for k, v in backbone(torch.zeros(1, 3, height, width)).items()}
    finally:
        backbone.train(was)
