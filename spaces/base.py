"""Dimensions and the shared machinery of a space: sampling, backend adapters, files."""
from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mfsearch.common import UsageError
from mfsearch.flops import estimate_flops, estimate_params


class SpaceError(UsageError, ValueError):
    """A space definition or a parameter set that cannot be used (one-line message)."""


@dataclass(frozen=True)
class Choice:
    values: tuple

    def sample(self, rng: random.Random) -> Any:
        return rng.choice(self.values)

    def grid(self) -> tuple:
        return self.values

    def contains(self, v: Any) -> bool:
        return v in self.values


@dataclass(frozen=True)
class IntRange:
    low: int
    high: int
    step: int = 1

    def sample(self, rng: random.Random) -> int:
        return rng.randrange(self.low, self.high + 1, self.step)

    def grid(self) -> tuple:
        return tuple(range(self.low, self.high + 1, self.step))

    def contains(self, v: Any) -> bool:
        return isinstance(v, int) and self.low <= v <= self.high and (v - self.low) % self.step == 0


@dataclass(frozen=True)
class FloatGrid:
    low: float
    high: float
    step: float

    def grid(self) -> tuple:
        n = int(round((self.high - self.low) / self.step))
        return tuple(round(self.low + i * self.step, 6) for i in range(n + 1))

    def sample(self, rng: random.Random) -> float:
        return rng.choice(self.grid())

    def contains(self, v: Any) -> bool:
        return any(abs(v - g) < 1e-6 for g in self.grid())


Dimension = Choice | IntRange | FloatGrid


def dimension_from_spec(name: str, spec: Any) -> Dimension:
    """A file's entry: a list (choices), {low, high[, step]} (range), or a scalar (fixed)."""
    if isinstance(spec, list):
        if not spec:
            raise SpaceError(f"dimension {name!r} has an empty list of choices")
        return Choice(tuple(spec))
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"low", "high", "step"}
        if unknown or "low" not in spec or "high" not in spec:
            raise SpaceError(f"dimension {name!r} must be a list or {{low, high, step}}; got {dict(spec)}")
        low, high, step = spec["low"], spec["high"], spec.get("step", 1)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high, step)) \
                or low > high or step <= 0:
            raise SpaceError(f"dimension {name!r} needs numbers with low <= high and step > 0; got {dict(spec)}")
        if all(isinstance(v, int) for v in (low, high, step)):
            return IntRange(low, high, step)
        return FloatGrid(float(low), float(high), float(step))
    return Choice((spec,))


def read_space_file(path: str | Path) -> Any:
    """A space file's content (YAML by its suffix, else JSON), or a one-line SpaceError."""
    path = Path(path)
    if not path.is_file():
        raise SpaceError(f"space file {path} not found; pass an existing YAML/JSON file to --space")
    try:
        data = yaml.safe_load(path.read_text()) if path.suffix in (".yaml", ".yml") \
            else json.loads(path.read_text())
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        first = str(exc).splitlines()[0]
        raise SpaceError(f"space file {path} is not valid {path.suffix[1:].upper()}: {first}") from None
    return data or {}


class Space:
    """A named set of dimensions plus decode/encode to a model config.

    Subclasses define `DIMENSIONS`, `decode` and `encode`; everything else, including
    the Optuna and Ray adapters, is shared.
    """

    DIMENSIONS: dict[str, Dimension] = {}
    name = "space"

    def __init__(self, dimensions: Mapping[str, Dimension] | None = None):
        self.dimensions: dict[str, Dimension] = dict(dimensions or self.DIMENSIONS)

    # ---- construction from files -----------------------------------------------------
    @classmethod
    def from_file(cls, path: str | Path) -> Space:
        """Narrow or widen the default space from YAML/JSON: {dimensions: {name: spec}}."""
        return cls.from_dict(read_space_file(path), source=str(path))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "space definition") -> Space:
        if not isinstance(data, Mapping):
            raise SpaceError(f"{source}: expected a mapping with a 'dimensions' key")
        unknown_top = set(data) - {"space", "dimensions"}
        if unknown_top:
            raise SpaceError(f"{source}: unknown keys {sorted(unknown_top)}; use 'space' and 'dimensions'")
        if data.get("space", cls.name) != cls.name:
            raise SpaceError(f"{source}: describes space {data['space']!r}, not {cls.name!r}")
        dims = dict(cls.DIMENSIONS)
        for name, spec in (data.get("dimensions") or {}).items():
            if name not in dims:
                raise SpaceError(f"{source}: unknown dimension {name!r}; known: {', '.join(dims)}")
            dims[name] = dimension_from_spec(name, spec)
        space = cls(dims)
        space.check()
        return space

    def to_dict(self) -> dict:
        out: dict[str, Any] = {}
        for name, d in self.dimensions.items():
            if isinstance(d, Choice):
                out[name] = list(d.values)
            else:
                out[name] = {"low": d.low, "high": d.high, "step": d.step}
        return {"space": self.name, "dimensions": out}

    def check(self) -> None:
        """Decode one corner so a broken narrowing fails at load time, not mid-search."""
        try:
            self.decode({n: d.grid()[0] for n, d in self.dimensions.items()})
        except (ValueError, KeyError, TypeError) as exc:
            raise SpaceError(f"space cannot build a model: {exc}") from None

    # ---- sampling ----------------------------------------------------------------------
    def sample_params(self, rng: random.Random) -> dict[str, Any]:
        return {n: d.sample(rng) for n, d in self.dimensions.items()}

    def sample(self, rng: random.Random, max_flops: float | None = None, max_tries: int = 10_000,
               max_params: float | None = None):
        """A random config (never over `max_flops`, counted at its own resolution, nor over
        `max_params`, counted with a 1000-class head)."""
        for _ in range(max_tries):
            cfg = self.decode(self.sample_params(rng))
            # MAdds first: the closed form is microseconds, a parameter count builds the model
            if (max_flops is None or self.flops(cfg) <= max_flops) and \
                    (max_params is None or estimate_params(cfg) <= max_params):
                return cfg
        caps = " and ".join(c for c in (max_flops and f"{max_flops / 1e6:.1f}M MAdds",
                                          max_params and f"{max_params / 1e6:.2f}M parameters") if c)
        smallest = f"the smallest this space holds is {self.flops_range()[0] / 1e6:.1f}M MAdds" \
            if max_flops is not None else "raise the parameter cap or use a smaller space"
        raise SpaceError(f"no model under {caps} found in {max_tries} draws; {smallest}")

    def sample_in_band(self, rng: random.Random, budget: float, band: float, max_tries: int = 100_000):
        """A random config in [band*B, B] MAdds: the space's own draws, kept only when they land
        there (rejection, so the band holds the space's distribution, not widened small models)."""
        for _ in range(max_tries):
            cfg = self.decode(self.sample_params(rng))
            if band * budget <= self.flops(cfg) <= budget:
                return cfg
        raise SpaceError(f"no model in [{band:.0%}, 100%] of {budget / 1e6:.1f}M MAdds found in {max_tries} "
                         "draws; lower the band or change the budget")

    def band_yield(self, budget: float, band: float, draws: int = 300, seed: int = 0) -> dict[str, int]:
        """What becomes of `draws` random proposals under a band [band*B, B]: in the band as
        drawn, brought down or up into it by `fit`, or beyond any width. Rejecting
        out-of-band proposals trains only `in_band`; fitting trains the fitted ones too."""
        rng = random.Random(seed)
        out = {"in_band": 0, "fitted_down": 0, "fitted_up": 0, "unfittable": 0}
        for _ in range(draws):
            cfg = self.decode(self.sample_params(rng))
            flops = self.flops(cfg)
            if band * budget <= flops <= budget:
                out["in_band"] += 1
                continue
            try:
                self.fit(cfg, budget, band)
            except SpaceError:
                out["unfittable"] += 1
                continue
            out["fitted_down" if flops > budget else "fitted_up"] += 1
        return out

    def fit(self, config: Any, budget: float, low: float):
        """`config` scaled in width into [low*B, B] MAdds; SpaceError when no width lands there."""
        raise SpaceError(f"the {self.name} space cannot fit a model into a budget")

    # ---- backend adapters (duck-typed: no Optuna or Ray import at module level) -----------
    def suggest(self, trial: Any) -> dict[str, Any]:
        """Ask an Optuna trial for one value per dimension."""
        params = {}
        for name, d in self.dimensions.items():
            if isinstance(d, Choice):
                params[name] = d.values[0] if len(d.values) == 1 else trial.suggest_categorical(name, list(d.values))
            elif isinstance(d, IntRange):
                params[name] = trial.suggest_int(name, d.low, d.high, step=d.step)
            else:
                params[name] = round(trial.suggest_float(name, d.low, d.high, step=d.step), 6)
        return params

    def ray_param_space(self) -> dict[str, Any]:
        """The same space as Ray Tune search primitives (imported here, on demand).

        Ranges become a uniform draw over their grid (`tune.choice` picks an index and
        returns low + index * step): Ray's `qrandint`/`quniform` round to multiples of
        `step` counted from 0, not from `low`, and `qrandint` with step 1 never draws
        `high`, so both would leave the space when `low` is not a multiple of `step`.
        """
        from ray import tune

        out: dict[str, Any] = {}
        for name, d in self.dimensions.items():
            out[name] = tune.choice(list(d.grid()))
        return out

    def normalize(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Coerce backend values (numpy scalars, float ints) to the dimension's own types;
        fixed (single-valued) dimensions, which backends are never asked about, are filled in."""
        out = {}
        for name, d in self.dimensions.items():
            if name not in params:
                if isinstance(d, Choice) and len(d.values) == 1:
                    out[name] = d.values[0]
                    continue
                raise SpaceError(f"parameter {name!r} missing")
            v = params[name]
            if hasattr(v, "item"):
                v = v.item()
            if isinstance(d, IntRange):
                v = int(round(v))
            elif isinstance(d, FloatGrid):
                v = round(float(v), 6)
            out[name] = v
        return out

    # ---- to be provided by a concrete space ------------------------------------------------
    def decode(self, params: Mapping[str, Any]):
        raise NotImplementedError

    def encode(self, config: Any) -> dict[str, Any]:
        raise NotImplementedError

    def flops(self, config: Any) -> int:
        """Closed-form MAdds at the config's own resolution, 1000 classes (the budget's convention)."""
        return estimate_flops(config)

    def check_contains(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Return `params` if every value lies in its dimension, else raise SpaceError."""
        for name, d in self.dimensions.items():
            if not d.contains(params[name]):
                raise SpaceError(f"config's {name}={params[name]!r} lies outside this space's range")
        return dict(params)

    def flops_range(self) -> tuple[int, int]:
        raise NotImplementedError


# Width fits (fit_to_budget, and the parameter fit in mfsearch.search.evaluate) resolve widths to
# WIDTH_STEP; below MIN_WIDTH most channels sit at their floor, so narrower models are not considered.
WIDTH_STEP = 0.005
MIN_WIDTH = 0.25


def check_fit(width: float | None, flops: int, budget: float, low: float, min_width: float, max_width: float,
              step: float, smallest) -> float:
    """The width a fit found, or the SpaceError that says why none lands in [low*B, B]
    (`smallest()` gives the MAdds at `min_width`, computed only for that message)."""
    if width is None:
        raise SpaceError(f"even at width {min_width} the model needs {smallest() / 1e6:.1f}M MAdds > budget "
                         f"{budget / 1e6:.1f}M; shrink depth, tokens or resolution instead")
    if flops < low * budget and width > max_width - step - 1e-9:
        raise SpaceError(f"even at width {max_width} the model needs only {flops / 1e6:.1f}M MAdds, under "
                         f"{low:.0%} of the budget {budget / 1e6:.1f}M; deepen or widen it instead")
    if flops < low * budget:
        raise SpaceError(f"no width lands this model in [{low:.0%}, 100%] of {budget / 1e6:.1f}M MAdds "
                         f"(channel rounding jumps from {flops / 1e6:.1f}M at width {width} past the budget)")
    return width
