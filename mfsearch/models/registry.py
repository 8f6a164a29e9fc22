"""Named model constructors (timm style): the seven published Mobile-Former presets
and the MobileNetV3 width family, all built from plain configs."""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import torch.nn as nn

from .config import BlockSpec, MobileFormerConfig, MobileNetV3Config, ModelConfig, config_from_dict
from .family import config_classes

MOBILENET_V3_NAMES = {
    "mobilenet_v3_large_050": ("large", 0.5), "mobilenet_v3_large_075": ("large", 0.75),
    "mobilenet_v3_large_100": ("large", 1.0), "mobilenet_v3_large_125": ("large", 1.25),
    "mobilenet_v3_small_050": ("small", 0.5), "mobilenet_v3_small_075": ("small", 0.75),
    "mobilenet_v3_small_100": ("small", 1.0),
}

# Published ImageNet MAdds (M) and top-1 of MobileNetV3 (Howard et al. 2019); the
# Mobile-Former ones live in presets.json.
MOBILENET_V3_PUBLISHED = {
    "mobilenet_v3_large_100": {"flops_M": 219, "top1": 75.2},
    "mobilenet_v3_large_075": {"flops_M": 155, "top1": 73.3},
    "mobilenet_v3_small_100": {"flops_M": 56, "top1": 67.4},
    "mobilenet_v3_small_075": {"flops_M": 44, "top1": 65.4},
}


@lru_cache(maxsize=1)
def preset_table() -> dict[str, dict]:
    """The published presets as data: one source of truth for configs and their figures."""
    text = resources.files("mfsearch.models").joinpath("presets.json").read_text()
    return json.loads(text)["presets"]


def preset_config(name: str) -> MobileFormerConfig:
    p = preset_table()[name]
    return MobileFormerConfig(
        blocks=tuple(BlockSpec.from_row(r) for r in p["blocks"]), stem=p["stem"],
        tokens=p["tokens"], token_dim=p["token_dim"], head_hidden=p["head_hidden"],
        group_num=p["group_num"])


def published_top1(variant: str, config: str | None = None) -> float | None:
    """ImageNet top-1 as published, for a variant named after a registered model; with
    `config` (a row's JSON), only when the variant is that model unmodified."""
    entry = preset_table().get(variant) or MOBILENET_V3_PUBLISHED.get(variant)
    if entry is None or (config is not None and json.loads(config) != get_config(variant).to_dict()):
        return None
    return float(entry["top1"])


def list_models(family: str | None = None) -> list[str]:
    """All registered names, optionally only one family's."""
    names = sorted(preset_table(), key=lambda n: preset_table()[n]["flops_M"])
    mnv3 = list(MOBILENET_V3_NAMES)
    if family is None:
        return names + mnv3
    return {MobileFormerConfig.family: names, MobileNetV3Config.family: mnv3}.get(family, [])


def get_config(name_or_config: Any, **overrides: Any) -> ModelConfig:
    """Resolve a name, a config, a config dict, or a JSON file path to a config."""
    cfg = name_or_config
    if isinstance(cfg, (str, Path)):
        name = str(cfg)
        if name in preset_table():
            cfg = preset_config(name)
        elif name in MOBILENET_V3_NAMES:
            variant, width = MOBILENET_V3_NAMES[name]
            cfg = MobileNetV3Config(variant=variant, width_mult=width)
        elif name.endswith(".json") and Path(name).is_file():
            data = json.loads(Path(name).read_text())
            cfg = config_from_dict(data.get("config", data))
        else:
            raise KeyError(f"unknown model {name!r}; choose one of {', '.join(list_models())} "
                           f"or pass a config / JSON file")
    elif isinstance(cfg, dict):
        cfg = config_from_dict(cfg)
    if not isinstance(cfg, config_classes()):
        raise TypeError(f"cannot build a model from {type(cfg).__name__}")
    return cfg.__class__(**{**cfg.__dict__, **overrides}) if overrides else cfg


def create_model(name_or_config: Any, num_classes: int = 1000, **overrides: Any) -> nn.Module:
    """Build a model by registered name, config, config dict or JSON file.

    `overrides` replace config fields, e.g. create_model("mobile_former_151m", tokens=3).
    """
    return get_config(name_or_config, **overrides).build(num_classes)
