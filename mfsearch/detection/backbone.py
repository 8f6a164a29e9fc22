"""Multi-scale feature extractors for detection: `create_backbone(name_or_config_or_checkpoint)`
builds the backbone a family's descriptor names (`Family.backbone`; the Mobile-Former and
MobileNetV3 adapters and the output contract are described in `mfsearch.models.backbones`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..models import get_config, get_family
from ..models.backbones import DEFAULT_STRIDES
from ..models.checkpoint import read_checkpoint
from ..models.config import ModelConfig, config_from_dict


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
    adapter = get_family(cfg).backbone
    if adapter is None:
        raise ValueError(f"the {cfg.family} family has no detection backbone adapter")
    backbone = adapter(cfg, tuple(out_strides), return_tokens)
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
