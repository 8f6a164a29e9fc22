"""One descriptor per model family, in one registry: what the rest of mfsearch asks about a
family (its config class, how figures name and colour it, whether a search proposes it or
compares against it, how detection cuts it into a backbone, how its MAdds are counted)
instead of testing family names itself.

A new family is one module: a config dataclass (`family` ClassVar, `resolution`,
`to_dict`/`from_dict`/`to_json`, `build(num_classes)`) and `register_family(Family(...))`,
with its named models and their published figures if it has any. Importing that module
makes the family known to configs, named constructors, search rows, FLOPs, latency,
export, detection, the calibration against published top-1 and the figures.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from torch import nn


class ModelConfig(Protocol):
    """What every family's config offers (the contract above), for annotations."""

    family: ClassVar[str]
    resolution: int

    def to_dict(self) -> dict: ...

    def to_json(self) -> str: ...

    def build(self, num_classes: int = 1000) -> nn.Module: ...


# what a search proposes / what it is compared against / neither: ranked against its published
# ImageNet top-1 only (a calibration set of other families)
ROLES = ("candidate", "baseline", "reference")
FLOP_COUNTS = ("closed", "traced")  # closed form in flops.py / traced once per config with fvcore

# (config, out_strides, return_tokens) -> a module whose forward gives {"c3": ..., "c4": ...}
BackboneAdapter = Callable[[Any, tuple[int, ...], bool], nn.Module]


@dataclass(frozen=True)
class Family:
    name: str
    config: type
    label: str                          # how figures and reports name it
    color: str                          # its colour in every figure
    marker: str = "o"
    role: str = "candidate"
    backbone: BackboneAdapter | None = None   # None: detection cannot use this family
    flops: str = "traced"
    models: Callable[[], dict[str, Any]] | None = None        # its named models: name -> config
    published: Callable[[], dict[str, dict]] | None = None    # name -> {"flops_M", "top1", ...} as published
    # named models that are sizes of one design, smallest first: label -> names (the calibration's
    # within-family order)
    size_orders: dict[str, tuple[str, ...]] | None = None

    def __post_init__(self) -> None:
        if self.role not in ROLES or self.flops not in FLOP_COUNTS:
            raise ValueError(f"family {self.name!r}: role must be one of {ROLES} and flops one of {FLOP_COUNTS}")
        if getattr(self.config, "family", None) != self.name:
            raise ValueError(f"family {self.name!r}: its config class says family = "
                             f"{getattr(self.config, 'family', None)!r}")


FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> Family:
    FAMILIES[family.name] = family
    return family


def get_family(name_or_config: Any) -> Family:
    """The descriptor of a family name or of a config's family."""
    name = name_or_config if isinstance(name_or_config, str) else getattr(name_or_config, "family", None)
    if name not in FAMILIES:
        raise ValueError(f"unknown model family {name!r}; expected one of {', '.join(FAMILIES)}")
    return FAMILIES[name]


def families(role: str | None = None) -> list[Family]:
    """Registered families in registration order, optionally only one role's."""
    return [f for f in FAMILIES.values() if role is None or f.role == role]


def compared() -> list[Family]:
    """The families a search proposes and compares against (what the latency and FLOP tables
    show), not the reference ones."""
    return families("candidate") + families("baseline")


def config_classes() -> tuple[type, ...]:
    return tuple(f.config for f in FAMILIES.values())
