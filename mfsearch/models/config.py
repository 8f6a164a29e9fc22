"""Plain-data descriptions of the model families, kept apart from the modules (timm style).

A config is the single thing a search samples, a results row stores and
`create_model` rebuilds, so it must round-trip through JSON exactly. Each family is
one config class carrying its `family` name and `build()`, described by a `Family`
registered beside it (mfsearch.models.family: label, colour, role, backbone adapter, FLOP
count); a new family is one new module that does the same.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields, replace
from functools import lru_cache
from importlib import resources
from typing import Any, ClassVar

import torch.nn as nn

from .backbones import MobileFormerBackbone, MobileNetV3Backbone
from .family import Family, ModelConfig, get_family, register_family
from .mobile_former import MobileFormer
from .mobilenet_v3 import build_mobilenet_v3

KINDS = ("lite", "down", "block")


def make_divisible(value: float, divisor: int) -> int:
    """MobileNet channel rounding: nearest multiple of `divisor`, never more than 10% below."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


# A row's options and their defaults, the published block. A row stores them as a 7th element
# only when one differs, so every row written before they existed reads, builds and serialises
# exactly as it did (and a config's JSON, its identity in results, is unchanged).
ROW_OPTIONS: dict[str, Any] = {"dynamic_relu": True, "bridges": True, "tokens": None}


@dataclass(frozen=True)
class BlockSpec:
    """One row of the architecture table: [kind, e1, out, n, stride, e2] as in the paper,
    plus options that trade the global part for speed row by row (`ROW_OPTIONS`):

    - `dynamic_relu`: False gives this row's blocks plain ReLU, what the model-wide ablation
      switch `dynamic_relu=False` gives every block;
    - `bridges`: False drops this row's Mobile->Former, Former and Former->Mobile (a pure mobile
      row); the tokens pass through it unchanged;
    - `tokens`: the bridges and the Former of this row run on the model's first `tokens` tokens
      and pass the rest through unchanged (None: all of them).
    """

    kind: str
    e1: int
    out: int
    n: int = 1
    stride: int = 1
    e2: int = 0
    dynamic_relu: bool = True
    bridges: bool = True
    tokens: int | None = None

    def __post_init__(self) -> None:
        # A 'block' row expands once (e1); the paper's tables carry an e2 there that the
        # authors' code never reads. Canonicalise it so equal architectures compare equal.
        if self.kind == "block" and self.e2 != 0:
            object.__setattr__(self, "e2", 0)
        object.__setattr__(self, "dynamic_relu", bool(self.dynamic_relu))
        object.__setattr__(self, "bridges", bool(self.bridges))
        if self.tokens is not None:
            object.__setattr__(self, "tokens", int(self.tokens))

    @classmethod
    def from_row(cls, row: Iterable[Any]) -> BlockSpec:
        row = list(row)
        if len(row) not in (6, 7) or (len(row) == 7 and not isinstance(row[6], dict)):
            raise ValueError(f"a block row is [kind, e1, out, n, stride, e2] plus an optional dict of options; "
                             f"got {row}")
        kind, e1, out, n, stride, e2 = row[:6]
        options = row[6] if len(row) == 7 else {}
        unknown = set(options) - set(ROW_OPTIONS)
        if unknown:
            raise ValueError(f"unknown block row options {sorted(unknown)}; known: {', '.join(ROW_OPTIONS)}")
        return cls(str(kind), int(e1), int(out), int(n), int(stride), int(e2), **options)

    def options(self) -> dict[str, Any]:
        """The options that differ from the published block."""
        return {k: getattr(self, k) for k, default in ROW_OPTIONS.items() if getattr(self, k) != default}

    def to_row(self) -> list:
        options = self.options()
        return [self.kind, self.e1, self.out, self.n, self.stride, self.e2] + ([options] if options else [])


@dataclass(frozen=True)
class MobileFormerConfig:
    """Everything that decides a Mobile-Former's weights and compute.

    `resolution` is the input size the architecture is designed (and FLOP-counted)
    for; the module itself accepts any size from 32 to 320.
    """

    family: ClassVar[str] = "mobile_former"
    blocks: tuple[BlockSpec, ...]
    stem: int = 16
    width_mult: float = 1.0
    tokens: int = 6
    token_dim: int = 192
    bridge_heads: int = 2
    former_heads: int = 4
    ffn_expansion: int = 2
    head_hidden: int = 1280
    head_expansion: int = 6
    group_num: int = 1
    dropout: float = 0.2
    resolution: int = 224
    # ablation switches (all True = the published architecture)
    mobile_to_former: bool = True
    former_to_mobile: bool = True
    dynamic_relu: bool = True
    former_ffn: bool = True
    former: bool = True  # False: no Former and no global tokens at all, a pure MobileNet stack

    def __post_init__(self) -> None:
        blocks = tuple(b if isinstance(b, BlockSpec) else BlockSpec.from_row(b) for b in self.blocks)
        # a row on all the model's tokens, or without dynamic ReLU in a model without it, is the
        # default row: one spelling per architecture
        object.__setattr__(self, "blocks", tuple(
            replace(b, tokens=None if b.tokens == self.tokens else b.tokens,
                    dynamic_relu=b.dynamic_relu or not self.dynamic_relu) for b in blocks))
        self.validate()

    # ---- derived shapes -------------------------------------------------------------
    @property
    def divisor(self) -> int:
        return 8 if self.width_mult > 1.01 else 4

    def stem_channels(self) -> int:
        return make_divisible(self.stem * self.width_mult, 4)

    def expanded_rows(self) -> list[tuple[str, int, int, int, int, int]]:
        """Rows with repeats unrolled and widths applied: (kind, in, out, stride, e1, e2)."""
        rows = []
        cin = self.stem_channels()
        for idx, b in enumerate(self.blocks):
            cout = make_divisible(b.out * self.width_mult, 4 if idx == 0 else self.divisor)
            for rep in range(b.n):
                rows.append((b.kind, cin, cout, b.stride if rep == 0 else 1, b.e1, b.e2))
                cin = cout
        return rows

    def row_globals(self) -> list[tuple[bool, bool, int]]:
        """Per expanded row, what its block carries of the global part: (dynamic ReLU, bridges
        and Former, the number of tokens they run on). The model-wide switches come first: without
        a Former no row has either, and `dynamic_relu=False` turns it off everywhere."""
        out = []
        for b in self.blocks:
            glob = self.former and b.kind != "lite"
            row = (glob and self.dynamic_relu and b.dynamic_relu, glob and b.bridges,
                   (b.tokens or self.tokens) if glob and b.bridges else 0)
            out += [row] * b.n
        return out

    def row_strides(self) -> list[int]:
        """Output stride of every expanded row relative to the input (the stem halves it)."""
        strides, s = [], 2
        for _kind, _cin, _cout, stride, _e1, _e2 in self.expanded_rows():
            s *= stride
            strides.append(s)
        return strides

    def last_channels(self) -> int:
        return self.expanded_rows()[-1][2]

    @property
    def depth(self) -> int:
        return sum(b.n for b in self.blocks)

    # ---- checks ---------------------------------------------------------------------
    def validate(self) -> None:
        """Reject configs that would build a broken module, with a message naming the field."""
        def bad(msg: str) -> None:
            raise ValueError(f"invalid MobileFormerConfig: {msg}")

        if not self.blocks:
            bad("blocks is empty")
        for i, b in enumerate(self.blocks):
            if b.kind not in KINDS:
                bad(f"block {i} kind {b.kind!r} is not one of {KINDS}")
            if b.e1 < 1 or b.out < 1 or b.n < 1 or b.stride not in (1, 2):
                bad(f"block {i} {b.to_row()} needs e1>=1, out>=1, n>=1, stride 1 or 2")
            if b.kind == "down" and b.e2 < 1:
                bad(f"block {i} is 'down' and needs e2>=1")
            if b.kind == "lite" and b.e2 != 0:
                bad(f"block {i} is 'lite' and takes e2=0")
            self._validate_options(i, b, bad)
        if self.width_mult <= 0 or self.stem < 1:
            bad("width_mult and stem must be positive")
        if self.former:
            if self.tokens < 1 or self.token_dim < 4:
                bad("tokens >= 1 and token_dim >= 4 are needed with a Former")
            if self.token_dim % self.former_heads:
                bad(f"token_dim {self.token_dim} is not divisible by former_heads {self.former_heads}")
            if self.token_dim % 4:
                bad(f"token_dim {self.token_dim} must be divisible by 4 (dynamic-ReLU MLP reduction)")
            for kind, cin, cout, *_ in self.expanded_rows():
                if kind != "lite" and (cin % self.bridge_heads or cout % self.bridge_heads):
                    bad(f"channels {cin}/{cout} are not divisible by bridge_heads {self.bridge_heads}")
        if self.group_num > 1:
            for _kind, cin, cout, _, e1, _e2 in self.expanded_rows():
                if cin % self.group_num or cout % self.group_num or (cin * e1) % self.group_num:
                    bad(f"channels {cin}->{cout} (e1={e1}) are not divisible by group_num {self.group_num}")
        if self.head_expansion < 1:
            bad(f"head_expansion {self.head_expansion} must be at least 1")
        if not 0.0 <= self.dropout < 1.0:
            bad("dropout must be in [0, 1)")
        if not 32 <= self.resolution <= 320:
            bad(f"resolution {self.resolution} is outside 32..320")

    def _validate_options(self, i: int, b: BlockSpec, bad) -> None:
        """A row's options must change something: one spelling per architecture."""
        options = b.options()
        if options and (b.kind == "lite" or not self.former):
            bad(f"block {i} takes no options {options}: "
                + ("a lite row has no global part" if b.kind == "lite" else "the model has no Former (former=False)"))
        if b.tokens is not None and not b.bridges:
            bad(f"block {i} sets tokens={b.tokens} but has no bridges to run them")
        if b.tokens is not None and not 1 <= b.tokens <= self.tokens:
            bad(f"block {i} tokens={b.tokens} must be in 1..{self.tokens} (the model's tokens)")

    # ---- serialisation --------------------------------------------------------------
    def to_dict(self) -> dict:
        d = asdict(self)
        d["blocks"] = [b.to_row() for b in self.blocks]
        return {"family": self.family, **d}

    def build(self, num_classes: int = 1000) -> nn.Module:
        return MobileFormer(self, num_classes)

    @classmethod
    def from_dict(cls, d: dict) -> MobileFormerConfig:
        d = {k: v for k, v in d.items() if k != "family"}
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown MobileFormerConfig fields: {sorted(unknown)}")
        d["blocks"] = tuple(BlockSpec.from_row(r) for r in d["blocks"])
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> MobileFormerConfig:
        return cls.from_dict(json.loads(text))

    def replace(self, **changes: Any) -> MobileFormerConfig:
        return replace(self, **changes)


@lru_cache(maxsize=1)
def preset_table() -> dict[str, dict]:
    """The published presets as data (presets.json): one source of truth for configs and figures."""
    text = resources.files("mfsearch.models").joinpath("presets.json").read_text()
    return json.loads(text)["presets"]


def preset_config(name: str) -> MobileFormerConfig:
    p = preset_table()[name]
    return MobileFormerConfig(
        blocks=tuple(BlockSpec.from_row(r) for r in p["blocks"]), stem=p["stem"],
        tokens=p["tokens"], token_dim=p["token_dim"], head_hidden=p["head_hidden"],
        group_num=p["group_num"])


def _presets() -> dict[str, MobileFormerConfig]:
    names = sorted(preset_table(), key=lambda n: preset_table()[n]["flops_M"])
    return {n: preset_config(n) for n in names}


# colours: seaborn's "deep" blue and orange, as the figures have always drawn them
register_family(Family("mobile_former", MobileFormerConfig, "Mobile-Former", "#4c72b0", "o", role="candidate",
                       backbone=MobileFormerBackbone, flops="closed", models=_presets, published=preset_table,
                       size_orders={"Mobile-Former presets": tuple(_presets())}))


@dataclass(frozen=True)
class MobileNetV3Config:
    """A torchvision MobileNetV3 family member: variant, width and design resolution."""

    family: ClassVar[str] = "mobilenet_v3"

    variant: str = "large"  # "large" | "small"
    width_mult: float = 1.0
    dropout: float = 0.2
    resolution: int = 224

    def __post_init__(self) -> None:
        if self.variant not in ("large", "small"):
            raise ValueError(f"invalid MobileNetV3Config: variant {self.variant!r} is not 'large' or 'small'")
        if self.width_mult <= 0:
            raise ValueError("invalid MobileNetV3Config: width_mult must be positive")
        if not 32 <= self.resolution <= 320:
            raise ValueError(f"invalid MobileNetV3Config: resolution {self.resolution} is outside 32..320")

    def to_dict(self) -> dict:
        return {"family": self.family, **asdict(self)}

    def build(self, num_classes: int = 1000) -> nn.Module:
        return build_mobilenet_v3(self, num_classes)

    @classmethod
    def from_dict(cls, d: dict) -> MobileNetV3Config:
        return cls(**{k: v for k, v in d.items() if k != "family"})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


MOBILENET_V3_NAMES = {
    "mobilenet_v3_large_050": ("large", 0.5), "mobilenet_v3_large_075": ("large", 0.75),
    "mobilenet_v3_large_100": ("large", 1.0), "mobilenet_v3_large_125": ("large", 1.25),
    "mobilenet_v3_small_050": ("small", 0.5), "mobilenet_v3_small_075": ("small", 0.75),
    "mobilenet_v3_small_100": ("small", 1.0),
}

# Published ImageNet MAdds (M) and top-1 of MobileNetV3 (Howard et al. 2019)
MOBILENET_V3_PUBLISHED = {
    "mobilenet_v3_large_100": {"flops_M": 219, "top1": 75.2},
    "mobilenet_v3_large_075": {"flops_M": 155, "top1": 73.3},
    "mobilenet_v3_small_100": {"flops_M": 56, "top1": 67.4},
    "mobilenet_v3_small_075": {"flops_M": 44, "top1": 65.4},
}


register_family(Family("mobilenet_v3", MobileNetV3Config, "MobileNetV3", "#dd8452", "s", role="baseline",
                       backbone=MobileNetV3Backbone, flops="traced",
                       models=lambda: {n: MobileNetV3Config(v, w) for n, (v, w) in MOBILENET_V3_NAMES.items()},
                       published=lambda: MOBILENET_V3_PUBLISHED,
                       size_orders={f"MobileNetV3-{v.title()}": tuple(n for n, (v2, _) in MOBILENET_V3_NAMES.items()
                                                                     if v2 == v) for v in ("large", "small")}))


def config_from_dict(d: dict) -> ModelConfig:
    """Rebuild any family's config from its dict (the `family` key decides; Mobile-Former
    configs are stored without it)."""
    return get_family(d.get("family", MobileFormerConfig.family)).config.from_dict(d)
