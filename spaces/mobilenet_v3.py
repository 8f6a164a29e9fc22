"""The MobileNetV3 baseline family: variant x width x resolution (torchvision models)."""
from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from mfsearch.models import MobileNetV3Config

from .base import Choice, IntRange, Space


class MobileNetV3Space(Space):
    name = "mobilenet_v3"
    DIMENSIONS = {
        "variant": Choice(("large", "small")),
        "width_mult": Choice((0.5, 0.75, 1.0, 1.25)),
        "resolution": IntRange(128, 288, 32),
    }

    def decode(self, params: Mapping[str, Any]) -> MobileNetV3Config:
        p = dict(params)
        return MobileNetV3Config(variant=p["variant"], width_mult=float(p["width_mult"]),
                                 resolution=int(p["resolution"]))

    def encode(self, config: MobileNetV3Config) -> dict[str, Any]:
        return self.check_contains({"variant": config.variant, "width_mult": config.width_mult,
                                    "resolution": config.resolution})

    def members(self, max_flops: float | None = None) -> list[MobileNetV3Config]:
        """Every family member (the space is small), optionally only those under a budget."""
        out = []
        for values in itertools.product(*(d.grid() for d in self.dimensions.values())):
            cfg = self.decode(dict(zip(self.dimensions, values)))
            if max_flops is None or self.flops(cfg) <= max_flops:
                out.append(cfg)
        return out

    def flops_range(self) -> tuple[int, int]:
        flops = [self.flops(c) for c in self.members()]
        return min(flops), max(flops)
