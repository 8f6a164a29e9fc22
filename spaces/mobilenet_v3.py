"""The MobileNetV3 baseline family: variant x width x resolution (torchvision models)."""
from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from mfsearch.flops import estimate_flops
from mfsearch.models import MobileNetV3Config

from .base import MIN_WIDTH, WIDTH_STEP, Choice, IntRange, Space, check_fit


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

    def fit(self, config: MobileNetV3Config, budget: float, low: float) -> MobileNetV3Config:
        return fit_width(config, budget, low)

    def flops_range(self) -> tuple[int, int]:
        flops = [self.flops(c) for c in self.members()]
        return min(flops), max(flops)


def fit_width(config: MobileNetV3Config, budget: float, low: float = 0.9, lo: float = MIN_WIDTH, hi: float = 2.5,
              tol: float = WIDTH_STEP) -> MobileNetV3Config:
    """The widest width (to `tol`) whose MAdds stay under the budget, checked to lie in [low*B, B].

    torchvision accepts any width multiplier; MAdds are traced (fvcore), so widths are
    bisected rather than scanned. They rise with width apart from 8-channel rounding steps,
    which is what `tol` resolves.
    """
    flops = lambda w: estimate_flops(config.__class__(**{**config.__dict__, "width_mult": round(w, 4)}))
    min_width, max_width = lo, hi
    if flops(lo) > budget:
        return config.__class__(**{**config.__dict__, "width_mult": check_fit(None, 0, budget, low, lo, hi, tol,
                                                                             lambda: flops(lo))})
    if flops(hi) <= budget:
        lo = hi
    while hi - lo > tol:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if flops(mid) <= budget else (lo, mid)
    width = round(lo, 4)
    width = check_fit(width, flops(width), budget, low, min_width, max_width, tol, lambda: 0)
    return config.__class__(**{**config.__dict__, "width_mult": width})
