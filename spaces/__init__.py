"""Declarative search spaces. They import neither Optuna nor Ray: the backends'
adapters (`suggest`, `ray_param_space`) take or import what they need lazily."""
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .base import Choice, Dimension, FloatGrid, IntRange, Space, SpaceError, read_space_file
from .mobile_former import MobileFormerCpuSpace, MobileFormerSpace
from .mobilenet_v3 import MobileNetV3Space

SPACES: dict[str, type[Space]] = {cls.name: cls for cls in (MobileFormerSpace, MobileFormerCpuSpace,
                                                            MobileNetV3Space)}


def space_for(config: Any) -> Space:
    """The default space of a config's family."""
    try:
        return SPACES[config.family]()
    except KeyError:
        raise SpaceError(f"no search space is registered for the {config.family} family") from None


def space_from_dict(data: Mapping[str, Any], source: str = "space definition",
                    default: str = MobileFormerSpace.name) -> Space:
    """A space definition ({space, dimensions}) as the space its `space` key names (`default`
    when it names none), its dimensions narrowing or widening that space's own."""
    name = data.get("space", default) if isinstance(data, Mapping) else default
    if name not in SPACES:
        raise SpaceError(f"{source}: unknown space {name!r}; known: {', '.join(SPACES)}")
    return SPACES[name].from_dict(data, source=source)


def load_space(spec: str | Path) -> Space:
    """A registered space by name (`mobile_former_cpu`), or a YAML/JSON file whose `space` key
    picks the space it narrows (`mobile_former` when it has none)."""
    if str(spec) in SPACES:
        return SPACES[str(spec)]()
    return space_from_dict(read_space_file(spec), source=str(spec))


def fit_to_budget(config: Any, budget: float, low: float = 0.9) -> Any:
    """`config` scaled in width into [low*B, B] MAdds, whatever its family."""
    return space_for(config).fit(config, budget, low)


__all__ = ["Choice", "Dimension", "FloatGrid", "IntRange", "Space", "SpaceError", "MobileFormerSpace",
           "MobileFormerCpuSpace", "MobileNetV3Space", "SPACES", "fit_to_budget", "load_space", "space_for",
           "space_from_dict"]
