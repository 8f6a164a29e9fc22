"""Every setting of a search run, validated once, recorded in run.json."""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from spaces import SPACES, MobileFormerSpace, load_space

from ..common import UsageError
from ..data import DATASETS, DEFAULT_DATASET, DEFAULT_TEST_SPLIT
from ..latency import RUNTIMES
from ..train import ProxyProtocol, check_device, resolve_device

BACKENDS = ("optuna", "ray")
OBJECTIVES = ("accuracy", "pareto")
SAMPLERS = ("tpe", "random")      # random: the baseline a search must beat (Yu et al., ICLR 2020)
COSTS = ("flops", "latency", "params")   # the second axis of a pareto search
COST_COLUMNS = {"flops": "flops", "latency": "latency_ms", "params": "params"}   # each cost's row column
# The finalists' rung: the best CONFIRM_TOP trials train CONFIRM_SEEDS times each on
# FINAL_LENGTH times a trial's images (1: the trial protocol again, with new seeds), and the
# winner is the best mean there: the pick does not rest on one short run. Provisional until
# the search-quality study (issue #19, item 4) measures which rung picks closest to the truth.
CONFIRM_TOP, CONFIRM_SEEDS = 2, 1
FINAL_LENGTH = 2.0
# 8 in-band trials and one finalist run each: the default run took 9 min 17 s on 2 cores with
# cached baselines (10 trials and two runs each: 14 min 43 s; docs/results/README.md)
DEFAULT_TRIALS = 8
DEFAULT_BAND = 0.9    # an accuracy search trains candidates in [0.9 B, B] (0: anything under B)
# a floor in optimiser steps for search.py's protocol: about what the built-in data gets from
# the default protocol (2 epochs on half of 20,000 images at batch 128 = 156 steps), so a
# small image folder trains about as long instead of ~13 steps
DEFAULT_MIN_STEPS = 150
SAVE_WEIGHTS = ("best", "all", "none")


def space_setting(spec: str | None) -> tuple[dict | None, str | None]:
    """(SearchSettings.space, .space_file) for a space name or file (search.py's --space; None:
    the default space). A name records no file; a search needs a Mobile-Former space."""
    if spec is None or spec == MobileFormerSpace.name:   # the default space by name: the same run identity
        return None, None
    loaded = load_space(spec)   # SpaceError: unknown name, bad file
    if not isinstance(loaded, MobileFormerSpace):
        raise UsageError(f"--space {spec}: a search needs a Mobile-Former space, not {loaded.name!r}")
    return loaded.to_dict(), (None if spec in SPACES else os.path.abspath(spec))


def default_protocol() -> ProxyProtocol:
    """The protocol search.py uses unless told otherwise: the calibrated default with a step floor."""
    return ProxyProtocol(min_steps=DEFAULT_MIN_STEPS)


# settings that define what a run measures: a resumed run must keep them
IDENTITY = ("budget", "backend", "objective", "dataset", "test_split", "protocol", "space", "seed",
            "latency_budget", "latency_runtime", "latency_threads", "cost", "band", "sampler", "param_budget")
# identity settings added later that are left out while unset: a run without them keeps the
# identity it had before they existed (an old run.json reads them as None)
UNSET_OUT_OF_IDENTITY = ("param_budget",)


@dataclass
class SearchSettings:
    budget: float
    backend: str = "optuna"
    objective: str = "accuracy"
    trials: int = DEFAULT_TRIALS
    workers: int = 1
    dataset: str = DEFAULT_DATASET
    data_root: str | None = None
    test_split: float = DEFAULT_TEST_SPLIT   # held-out share of a flat image tree (no train/ test/ folders)
    download: bool = False
    protocol: ProxyProtocol = field(default_factory=lambda: default_protocol())
    space: dict | None = None          # a space file's content (None: the default space)
    space_file: str | None = None
    seed: int = 0
    name: str = ""
    out: str = "runs"
    device: str = "cpu"
    threads: int | None = None         # per worker; default: cores / workers
    storage: str | None = None         # Optuna storage URL; default: a journal file in the run folder
    address: str | None = None         # Ray cluster to join
    baselines: bool = True
    confirm_top: int = CONFIRM_TOP     # retrain the best K complete trials with more seeds (0: off)
    confirm_seeds: int = CONFIRM_SEEDS  # extra seeds per confirmed trial
    save_weights: str = "best"         # best | all | none (search/weights.py)
    latency_budget: float | None = None  # ms per image (batch 1): a hard cap checked before training
    latency_runtime: str = "onnxruntime"
    latency_threads: int = 1
    cost: str = "flops"                # pareto: top-1 against MAdds, measured latency or parameters
    band: float | None = None          # candidates in [band*B, B]; None: DEFAULT_BAND (accuracy) or 0 (pareto)
    final_length: float = FINAL_LENGTH  # the finalists' rung: this many times a trial's training images
    sampler: str = "tpe"               # tpe (Optuna's TPE, constrained) | random (uniform draws, same band)
    param_budget: float | None = None  # parameters with a 1000-class head: a hard cap checked before training
    baseline_widths: int = 0           # without a band: MobileNetV3 fitted at N costs up to B (0: registered widths)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise UsageError(f"unknown backend {self.backend!r}; choose one of {', '.join(BACKENDS)}")
        if self.objective not in OBJECTIVES:
            raise UsageError(f"unknown objective {self.objective!r}; choose one of {', '.join(OBJECTIVES)}")
        if self.dataset not in DATASETS:
            raise UsageError(f"unknown dataset {self.dataset!r}; choose one of {', '.join(DATASETS)}")
        if not 0 < self.test_split < 1:
            raise UsageError(f"--test-split must be in (0, 1), got {self.test_split}")
        if self.trials < 1:
            raise UsageError(f"--trials must be at least 1, got {self.trials}")
        if self.workers < 1:
            raise UsageError(f"--workers must be at least 1, got {self.workers}")
        if self.seed < 0:
            raise UsageError(f"--seed must be non-negative, got {self.seed}")
        if self.confirm_top < 0 or self.confirm_seeds < 0 or (self.confirm_top and not self.confirm_seeds):
            raise UsageError(f"--confirm-top and --confirm-seeds must be >= 0 (and seeds >= 1 when confirming), "
                             f"got {self.confirm_top} and {self.confirm_seeds}")
        if self.save_weights not in SAVE_WEIGHTS:
            raise UsageError(f"--save-weights must be one of {', '.join(SAVE_WEIGHTS)}, got {self.save_weights!r}")
        if self.latency_runtime not in RUNTIMES:
            raise UsageError(f"unknown --latency-runtime {self.latency_runtime!r}; choose one of {', '.join(RUNTIMES)}")
        if self.latency_threads < 1:
            raise UsageError(f"--latency-threads must be at least 1, got {self.latency_threads}")
        if self.latency_budget is not None and not self.latency_budget > 0:
            raise UsageError(f"--latency-budget must be a positive latency, got {self.latency_budget}")
        if self.param_budget is not None and not 0 < self.param_budget < float("inf"):
            raise UsageError(f"--param-budget must be a positive parameter count, got {self.param_budget}")
        if self.cost not in COSTS:
            raise UsageError(f"unknown --cost {self.cost!r}; choose one of {', '.join(COSTS)}")
        if self.cost != "flops" and self.objective != "pareto":
            raise UsageError("--cost sets the second axis of --objective pareto; add --objective pareto")
        if self.sampler not in SAMPLERS:
            raise UsageError(f"unknown --sampler {self.sampler!r}; choose one of {', '.join(SAMPLERS)}")
        if self.band is None:
            self.band = DEFAULT_BAND if self.objective == "accuracy" else 0.0
        if not 0 <= self.band < 1:
            raise UsageError(f"--band must be in [0, 1): the share of the budget a candidate must reach "
                             f"(0 turns the band off), got {self.band}")
        if self.baseline_widths < 0 or (self.baseline_widths and self.band):
            raise UsageError(f"--baseline-widths must be >= 0, and is for a search without a band (a banded one "
                             f"fits its baselines into the band), got {self.baseline_widths} with band {self.band}")
        if self.band and self.objective == "pareto":
            raise UsageError("--band applies to --objective accuracy; a pareto search keeps the whole front "
                             "(drop --band or pass --band 0)")
        if not 1 <= self.final_length <= 64:
            raise UsageError(f"--final-length must be in [1, 64] (times a trial's training images), "
                             f"got {self.final_length}")
        if self.threads is not None and self.threads < 1:
            raise UsageError(f"--threads must be at least 1, got {self.threads}")
        check_device(self.device)
        if self.storage and "://" not in self.storage:
            raise UsageError(f"--storage {self.storage!r} is not a database URL; use e.g. "
                             "postgresql://user:pw@host/db, "
                             "or leave it out for a journal file in the run folder")
        if self.storage and self.backend == "ray":
            raise UsageError("--storage applies to the optuna backend; Ray keeps its state in the run folder")
        if self.address and self.backend != "ray":
            raise UsageError("--address joins a Ray cluster; add --backend ray")
        if not self.name:
            raise UsageError("a run needs a --name")

    @property
    def uses_latency(self) -> bool:
        """Whether every candidate's latency is measured (a latency budget or a latency front)."""
        return self.latency_budget is not None or self.cost == "latency"

    @property
    def run_dir(self) -> Path:
        return Path(self.out) / self.name

    @property
    def worker_threads(self) -> int:
        return self.threads or max(1, (os.cpu_count() or 1) // self.workers)

    def resolved_device(self) -> str:
        return resolve_device(self.device)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["protocol"] = self.protocol.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> SearchSettings:
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        d.setdefault("band", 0.0)   # runs from before the band trained anything under the budget
        d["protocol"] = ProxyProtocol.from_dict(d["protocol"])
        return cls(**d)

    def final_protocol(self) -> ProxyProtocol:
        """The finalists' rung: `final_length` times a trial's training images, on more of the
        data first (the calibration favoured more samples over more epochs), then more epochs."""
        p = self.protocol
        if self.final_length == 1:
            return p
        images = p.epochs * p.data_fraction * self.final_length   # in passes over the whole training set
        fraction = min(1.0, images / p.epochs)
        # the step floor grows too: on small data the floor, not the epochs, sets a trial's length
        return replace(p, data_fraction=fraction, epochs=max(1, round(images / fraction)), test_fraction=1.0,
                       min_steps=round(p.min_steps * self.final_length))

    def within_params(self, params: float) -> bool:
        return self.param_budget is None or params <= self.param_budget

    def in_band(self, flops: float) -> bool:
        return self.band * self.budget <= flops <= self.budget

    def identity(self) -> dict:
        d = self.to_dict()
        return {k: d[k] for k in IDENTITY if not (k in UNSET_OUT_OF_IDENTITY and d[k] is None)}
