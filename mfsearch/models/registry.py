"""Named model constructors (timm style) over every registered family's named models (the
seven published Mobile-Former presets, the MobileNetV3 widths, the other mobile families of
torchvision_mobile), all built from plain configs."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch.nn as nn

from .config import ModelConfig, config_from_dict
from .family import FAMILIES, config_classes

__all__ = ["create_model", "get_config", "list_models", "published", "published_top1"]


def _named() -> dict[str, ModelConfig]:
    """Every family's named models, in registration order."""
    return {n: c for f in FAMILIES.values() if f.models for n, c in f.models().items()}


def published(name: str) -> dict:
    """A named model's figures as published ({"flops_M", "top1", ...}); {} when there are none."""
    for f in FAMILIES.values():
        table = f.published() if f.published else {}
        if name in table:
            return table[name]
    return {}


def published_top1(variant: str, config: str | None = None) -> float | None:
    """ImageNet top-1 as published, for a variant named after a registered model; with
    `config` (a row's JSON), only when the variant is that model unmodified."""
    entry = published(variant)
    if not entry or (config is not None and json.loads(config) != get_config(variant).to_dict()):
        return None
    return float(entry["top1"])


def list_models(family: str | None = None) -> list[str]:
    """All registered names (each family's in its own order), optionally only one family's."""
    if family is None:
        return list(_named())
    f = FAMILIES.get(family)
    return list(f.models()) if f and f.models else []


def get_config(name_or_config: Any, **overrides: Any) -> ModelConfig:
    """Resolve a name, a config, a config dict, or a JSON file path to a config."""
    cfg = name_or_config
    if isinstance(cfg, (str, Path)):
        name = str(cfg)
        named = _named()
        if name in named:
            cfg = named[name]
        elif name.endswith(".json"):
            if not Path(name).is_file():
                raise KeyError(f"config file {name} not found; give a registered model name or an existing "
                               f"config JSON (a search's best.json, or one written by config.to_json())")
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
