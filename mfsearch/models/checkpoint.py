"""Trained weights beside the architecture that produced them.

A checkpoint is one `torch.save`d dict: `config` (the config's JSON dict), `num_classes`,
`state_dict`, and free-form `meta` (dataset, protocol, seed, top-1). So

    ckpt = torch.load("runs/NAME/best.pt")
    model = create_model(config_from_dict(ckpt["config"]), num_classes=ckpt["num_classes"])
    model.load_state_dict(ckpt["state_dict"])

or in one call `model = load_checkpoint("runs/NAME/best.pt")`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .config import ModelConfig, config_from_dict
from .registry import create_model


def save_checkpoint(path: str | Path, config: ModelConfig, num_classes: int, state_dict: dict[str, torch.Tensor],
                    **meta: Any) -> Path:
    """Write atomically (a kill mid-write leaves the old file or none, never half of one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    torch.save({"config": config.to_dict(), "num_classes": num_classes, "state_dict": state_dict, "meta": meta},
               tmp)
    os.replace(tmp, path)
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or not {"config", "num_classes", "state_dict"} <= set(ckpt):
        raise ValueError(f"{path} is not an mfsearch checkpoint (needs config, num_classes and state_dict)")
    return ckpt


def load_checkpoint(path: str | Path) -> nn.Module:
    """The trained model of a checkpoint, in eval mode on the CPU."""
    return model_from_checkpoint(read_checkpoint(path))


def model_from_checkpoint(ckpt: dict[str, Any]) -> nn.Module:
    """The trained model of a checkpoint already read (`read_checkpoint`), in eval mode."""
    model = create_model(config_from_dict(ckpt["config"]), num_classes=ckpt["num_classes"])
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()
