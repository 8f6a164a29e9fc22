"""Published ImageNet top-1 of the registered models, for comparing a proxy with it."""
from __future__ import annotations

import json

from ..models import MOBILENET_V3_PUBLISHED, get_config, preset_table


def published_top1(variant: str, config: str | None = None) -> float | None:
    """ImageNet top-1 as published, for a variant named after a registered model; with
    `config` (a row's JSON), only when the variant is that model unmodified."""
    entry = preset_table().get(variant) or MOBILENET_V3_PUBLISHED.get(variant)
    if entry is None or (config is not None and json.loads(config) != get_config(variant).to_dict()):
        return None
    return float(entry["top1"])
