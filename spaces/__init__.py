"""Declarative search spaces. They import neither Optuna nor Ray: the backends'
adapters (`suggest`, `ray_param_space`) take or import what they need lazily."""
from .base import Choice, Dimension, FloatGrid, IntRange, Space, SpaceError
from .mobile_former import MobileFormerSpace, fit_to_budget
from .mobilenet_v3 import MobileNetV3Space

__all__ = ["Choice", "Dimension", "FloatGrid", "IntRange", "Space", "SpaceError", "MobileFormerSpace",
           "MobileNetV3Space", "fit_to_budget"]
