"""Declarative search spaces. They import neither Optuna nor Ray: the backends'
adapters (`suggest`, `ray_param_space`) take or import what they need lazily."""
from typing import Any

from .base import Choice, Dimension, FloatGrid, IntRange, Space, SpaceError
from .mobile_former import MobileFormerSpace
from .mobilenet_v3 import MobileNetV3Space

SPACES: dict[str, type[Space]] = {cls.name: cls for cls in (MobileFormerSpace, MobileNetV3Space)}


def space_for(config: Any) -> Space:
    """The default space of a config's family."""
    try:
        return SPACES[config.family]()
    except KeyError:
        raise SpaceError(f"no search space is registered for the {config.family} family") from None


def fit_to_budget(config: Any, budget: float, low: float = 0.9) -> Any:
    """`config` scaled in width into [low*B, B] MAdds, whatever its family."""
    return space_for(config).fit(config, budget, low)


__all__ = ["Choice", "Dimension", "FloatGrid", "IntRange", "Space", "SpaceError", "MobileFormerSpace",
           "MobileNetV3Space", "SPACES", "fit_to_budget", "space_for"]
