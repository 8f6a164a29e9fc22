"""The Mobile-Former design space.

A sampled architecture is a stem, a `lite` row (stage 0, optionally followed by
`block` rows at the same resolution) and five stages after it, laid out as in the
paper's tables:

    stage 1  stride 2   down + (depth-1) blocks     absent when the lite row has stride 2
    stage 2  stride 2   down + (depth-1) blocks
    stage 3  stride 2   down + (depth-1) blocks
    stage 4  stride 1   depth blocks at wider channels (depth 0 = no such stage)
    stage 5  stride 2   down + (depth-1) blocks

Base channels come from a named template (one per published family) scaled by the
width multiplier. Every `down` row expands by (`down_e1`, `e2_k`), every `block` row of
stage k by `e1_k`. Token dimensions are multiples of 32 (so the Former's 4 heads and
the dynamic-ReLU MLP's d/4 always divide) and channels are multiples of 4 (so the
bridges' 2 heads and the grouped convs always divide): invalid models cannot be drawn.

`MobileFormerCpuSpace` (`mobile_former_cpu`, opt-in: `--space mobile_former_cpu`, or a
file with `space: mobile_former_cpu`) adds what each stage spends on the global part, as
row options (mfsearch.models.config.BlockSpec) on every row of the stage: for stage k =
0..5 (0: the `block` rows after the lite row) `dynamic_relu_k` (plain ReLU when False),
`bridges_k` (a pure mobile stage when False: tokens pass through) and `tokens_k` (its
bridges and Former run on the first min(tokens_k, tokens) tokens), plus `head_expansion`.
The default space keeps its dimensions, so it draws the same stream for a seed.

Use it in your own loop:

    import random
    from spaces.mobile_former import MobileFormerSpace
    space = MobileFormerSpace()                  # or spaces.load_space("narrow.yaml" | "mobile_former_cpu")
    cfg = space.sample(random.Random(0), max_flops=150e6)
    model = mfsearch.create_model(cfg, num_classes=10)
"""
from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from mfsearch.flops import estimate_flops
from mfsearch.models import BlockSpec, MobileFormerConfig
from mfsearch.models.config import ROW_OPTIONS

from .base import MIN_WIDTH, WIDTH_STEP, Choice, FloatGrid, IntRange, Space, SpaceError, check_fit

# Base channels [stem, c0, c1, c2, c3, c4, c5] of the published families.
CHANNEL_TEMPLATES: dict[str, tuple[int, ...]] = {
    "c52": (8, 12, 16, 24, 48, 64, 96),       # 26M and 52M (c1 unused: their lite row has stride 2)
    "c151": (12, 12, 16, 32, 64, 88, 128),    # 96M and 151M
    "c214": (12, 12, 20, 40, 80, 112, 160),
    "c294": (16, 16, 24, 48, 96, 128, 192),
    "c508": (24, 24, 40, 72, 128, 176, 240),
}
STAGES = (1, 2, 3, 4, 5)
STRIDES = {1: 2, 2: 2, 3: 2, 4: 1, 5: 2}

_DIMENSIONS: dict[str, Any] = {
    "channels": Choice(tuple(CHANNEL_TEMPLATES)),
    "width_mult": FloatGrid(0.5, 1.5, 0.05),
    "tokens": IntRange(1, 8),
    "token_dim": IntRange(64, 256, 32),
    "head_hidden": Choice((512, 768, 1024, 1280, 1600, 1920, 2048)),
    "resolution": IntRange(128, 288, 32),
    "group_num": Choice((1, 4)),
    "lite_e1": IntRange(2, 3),
    "lite_stride": Choice((1, 2)),
    "depth0": IntRange(1, 3),
    "e1_0": IntRange(3, 6),
    "down_e1": IntRange(3, 6),
}
for _k in STAGES:
    _DIMENSIONS[f"depth{_k}"] = IntRange(0 if _k == 4 else 1, 4)
    _DIMENSIONS[f"e1_{_k}"] = IntRange(3, 6)
    if STRIDES[_k] == 2:
        _DIMENSIONS[f"e2_{_k}"] = IntRange(3, 6)

# The per-stage trade of the global part (the `mobile_former_cpu` space): stage 0 is its
# `block` rows (depth0 > 1), stages 1-5 as above. Each stage's rows get its options.
GLOBAL_STAGES = (0, *STAGES)
_CPU_DIMENSIONS: dict[str, Any] = {"head_expansion": IntRange(2, 6)}
for _k in GLOBAL_STAGES:
    _CPU_DIMENSIONS[f"dynamic_relu_{_k}"] = Choice((False, True))
    _CPU_DIMENSIONS[f"bridges_{_k}"] = Choice((False, True))
    _CPU_DIMENSIONS[f"tokens_{_k}"] = IntRange(1, 8)


def _stage_options(p: Mapping[str, Any], k: int) -> dict[str, Any]:
    """Stage k's row options; a space without the dimensions gives the published block. A
    stage asking for more tokens than the model has runs on all of them."""
    bridges = p.get(f"bridges_{k}", ROW_OPTIONS["bridges"])
    tokens = min(p.get(f"tokens_{k}", p["tokens"]), p["tokens"])
    return {"dynamic_relu": p.get(f"dynamic_relu_{k}", ROW_OPTIONS["dynamic_relu"]), "bridges": bridges,
            "tokens": tokens if bridges and tokens < p["tokens"] else None}


def _ordered(d: Any) -> bool:
    """Whether MAdds grow with the dimension's value: ranges, and switches (True adds a part)."""
    return not isinstance(d, Choice) or all(isinstance(v, bool) for v in d.values)


class MobileFormerSpace(Space):
    name = "mobile_former"
    DIMENSIONS = _DIMENSIONS
    # values given to parameters that a config leaves unused (so encode is a function)
    INERT = {"e1_0": 3, "depth1": 1, "e1_1": 3, "e2_1": 4, "e1_2": 3, "e1_3": 3, "e1_4": 6, "e1_5": 3}

    def decode(self, params: Mapping[str, Any]) -> MobileFormerConfig:
        p = self.normalize(params) if set(params) >= set(self.dimensions) else dict(params)
        try:
            base = CHANNEL_TEMPLATES[p["channels"]]
        except KeyError:
            raise SpaceError(f"unknown channel template {p.get('channels')!r}; "
                             f"known: {', '.join(CHANNEL_TEMPLATES)}") from None
        rows = [["lite", p["lite_e1"], base[1], 1, p["lite_stride"], 0]]
        rows += [["block", p["e1_0"], base[1], 1, 1, 0, _stage_options(p, 0)]] * (p["depth0"] - 1)
        for k in STAGES:
            if k == 1 and p["lite_stride"] == 2:
                continue  # keep the output stride at 32
            depth, c, options = p[f"depth{k}"], base[k + 1], _stage_options(p, k)
            if STRIDES[k] == 2:
                rows.append(["down", p["down_e1"], c, 1, 2, p[f"e2_{k}"], options])
                depth -= 1
            rows += [["block", p[f"e1_{k}"], c, 1, 1, 0, options]] * depth
        return MobileFormerConfig(
            blocks=tuple(BlockSpec.from_row(r) for r in rows), stem=base[0], width_mult=p["width_mult"],
            tokens=p["tokens"], token_dim=p["token_dim"], head_hidden=p["head_hidden"],
            head_expansion=p.get("head_expansion", MobileFormerConfig.head_expansion),
            group_num=p["group_num"], resolution=p["resolution"])

    def encode(self, config: MobileFormerConfig) -> dict[str, Any]:
        """Parameters that decode to `config`; SpaceError when the space cannot express it."""
        rows = [b for b in config.blocks for _ in range(b.n)]
        stem_and_c0 = (config.stem, rows[0].out)
        p: dict[str, Any] = dict(self.INERT)
        for k in GLOBAL_STAGES:   # what an absent stage, or one on the published block, encodes to
            p.update({f"dynamic_relu_{k}": True, f"bridges_{k}": True, f"tokens_{k}": config.tokens})
        p.update(width_mult=config.width_mult, tokens=config.tokens, token_dim=config.token_dim,
                 head_hidden=config.head_hidden, head_expansion=config.head_expansion, group_num=config.group_num,
                 resolution=config.resolution, lite_e1=rows[0].e1, lite_stride=rows[0].stride)
        if rows[0].kind != "lite":
            raise SpaceError("config does not start with a lite row")
        i = 1
        while i < len(rows) and rows[i].kind == "block" and rows[i].out == rows[0].out:
            p["e1_0"] = rows[i].e1
            p.update(_encode_options(rows[i], 0, config.tokens))
            i += 1
        p["depth0"] = i
        channels = list(stem_and_c0) + [None] * 5
        down_e1 = []
        for k in STAGES:
            if k == 1 and p["lite_stride"] == 2:
                continue
            if STRIDES[k] == 2:
                if i >= len(rows) or rows[i].kind != "down":
                    raise SpaceError(f"stage {k} does not start with a down row")
                down_e1.append(rows[i].e1)
                p[f"e2_{k}"] = rows[i].e2
                p.update(_encode_options(rows[i], k, config.tokens))
                channels[k + 1] = rows[i].out
                i, depth = i + 1, 1
            else:
                depth = 0
            while i < len(rows) and rows[i].kind == "block" and (
                    channels[k + 1] is None or rows[i].out == channels[k + 1]):
                if STRIDES[k] == 1 and channels[k + 1] is None:
                    channels[k + 1] = rows[i].out
                if STRIDES[k] == 1 and rows[i].out == channels[k]:
                    break  # still the previous stage's width
                p[f"e1_{k}"] = rows[i].e1
                p.update(_encode_options(rows[i], k, config.tokens))
                i, depth = i + 1, depth + 1
            p[f"depth{k}"] = depth
        if i != len(rows) or len(set(down_e1)) > 1:
            raise SpaceError("config's block layout is not one this space can express")
        p["down_e1"] = down_e1[0]
        template = next((name for name, base in CHANNEL_TEMPLATES.items()
                         if all(c is None or c == b for c, b in zip(channels, base))), None)
        if template is None:
            raise SpaceError(f"channels {channels} match no template ({', '.join(CHANNEL_TEMPLATES)})")
        p["channels"] = template
        p = {name: v for name, v in p.items() if name in self.dimensions}
        if self.decode(p) != config:
            raise SpaceError("config has settings (ablations, heads, dropout, row options) outside this space")
        return self.check_contains(self._settle(p, config))

    def _settle(self, p: dict[str, Any], config: MobileFormerConfig) -> dict[str, Any]:
        """A parameter outside its dimension that the config does not use (an inert value a file
        narrowed away, `tokens_k` of a stage without bridges) takes the first value of its grid
        that decodes to the same config; one the config uses stays, and check_contains refuses it."""
        for name, d in self.dimensions.items():
            if not d.contains(p[name]):
                p[name] = next((v for v in d.grid() if self.decode({**p, name: v}) == config), p[name])
        return p

    def fit(self, config: MobileFormerConfig, budget: float, low: float) -> MobileFormerConfig:
        return fit_to_budget(config, budget, low)

    def flops_range(self) -> tuple[int, int]:
        """Smallest and largest MAdds the space holds (FLOPs grow with every ordered dimension)."""
        ordered = {n: d.grid() for n, d in self.dimensions.items() if _ordered(d)}
        categorical = {n: d.values for n, d in self.dimensions.items() if not _ordered(d)}
        lows, highs = [], []
        for combo in itertools.product(*categorical.values()):
            fixed = dict(zip(categorical, combo))
            lows.append(self.flops(self.decode({**fixed, **{n: min(g) for n, g in ordered.items()}})))
            highs.append(self.flops(self.decode({**fixed, **{n: max(g) for n, g in ordered.items()}})))
        return min(lows), max(highs)


def _encode_options(row: BlockSpec, k: int, tokens: int) -> dict[str, Any]:
    """Stage k's parameters from one of its rows (decode checks that the stage's rows agree);
    a row without bridges encodes its inert token count, all the model's tokens."""
    return {f"dynamic_relu_{k}": row.dynamic_relu, f"bridges_{k}": row.bridges,
            f"tokens_{k}": row.tokens or tokens}


class MobileFormerCpuSpace(MobileFormerSpace):
    """The default space plus, per stage, what it spends on the global part: dynamic ReLU or
    plain ReLU (`dynamic_relu_k`), bridges and Former or none (`bridges_k`), how many of the
    model's tokens they run on (`tokens_k`, capped at `tokens`), and the head's expansion.
    On a one-thread CPU the global part costs far more time than its share of MAdds, so a
    latency-aware search can trade it stage by stage."""

    name = "mobile_former_cpu"
    DIMENSIONS = {**_DIMENSIONS, **_CPU_DIMENSIONS}


def fit_to_budget(config: MobileFormerConfig, budget: float, low: float = 0.9,
                  step: float = WIDTH_STEP, min_width: float = MIN_WIDTH) -> MobileFormerConfig:
    """Scale the width multiplier (and nothing else) so the model lands in [low*B, B].

    MAdds are a step function of width (channel rounding, and the divisor switch from
    4 to 8 above width 1.01), so widths are scanned on a fine grid rather than bisected;
    the widest width under the budget wins. Below `min_width` most channels sit at the
    4-channel floor, so narrower models are not considered.
    """
    best_w, best_f = None, -1
    w = min_width
    while w <= 4.0 + 1e-9:
        f = estimate_flops(config.replace(width_mult=round(w, 4)))
        if f > budget and w > 1.5:
            break
        if best_f < f <= budget:
            best_w, best_f = round(w, 4), f
        w += step
    return config.replace(width_mult=check_fit(best_w, best_f, budget, low, min_width, 4.0, step,
                                               lambda: estimate_flops(config.replace(width_mult=min_width))))
