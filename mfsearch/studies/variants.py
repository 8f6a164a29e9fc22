"""The `variants` study kind, and the file format of every classification study kind
(`variants`, `budgets`, `datasets`, `calibration`, `truth`):
`python search.py --experiment experiments/NAME.yaml [--size smoke|full]`.

A study trains a fixed list of architectures (`variants`), each under every seed, with
one proxy protocol per entry of `protocols` (one protocol unless the study compares
proxies), and writes the rows to `runs/NAME/trials.parquet` in the search results
schema plus `study`, `variant`, `protocol_name`. Finished (variant, seed, protocol)
triples are kept in `rows.jsonl` as they finish, so rerunning the command resumes
(mfsearch.studies.training runs them).

The kind (mfsearch.studies.registry): a file may name it with `kind:`; without one it is
`variants`, or `budgets` when it has `search:`. `datasets` (the same variants on two or
more datasets in every size, whose rankings are compared), `calibration` (every
protocol's ranking against published top-1) and `truth` (every protocol's ranking against
the protocol named `truth`, long training on the same data) are named explicitly; a `variants` study may
still ask for the calibration report with `analysis: calibration`, and one whose rows span
several datasets gets the `datasets` report.

File layout (every key can be overridden per size under `sizes:`):

    study: tokens
    kind: variants                    # optional: variants | budgets | datasets | calibration | truth
    description: ...
    base: mobile_former_151m          # registered name for variants without `model`
    budget: 150M                      # optional: width-fit each variant into [0.9 B, B]
    variants: {tokens1: {tokens: 1}, ...}   # overrides of MobileFormerConfig fields,
                                            # or {model: NAME or a config .json}; or `sample:` (below)
    sample: {count: 12, budget: 150M, seed: 0, band: 0.9}   # random space draws named sampleNN (beside
                                                 # or instead of variants); with `band`, each draw lies in
                                                 # [band*B, B] (width-fitted up into it, or redrawn)
    search: {budgets: [25M, 50M], trials: 12}    # instead of variants: one search.py run per
                                                 # budget and seed, merged by analyze.py; trials
                                                 # may be a list, one per budget; confirm_top
                                                 # (default 0), band, objective, backend and cost
                                                 # (param_budget, baseline_widths too) as search.py's
                                                 # flags; space: a name or file, or a list of them
                                                 # (one search per space and budget)
    paper: {reference: tokens1, delta: {tokens3: 0.5}, metric: ImageNet top-1}  # what the
                                                 # paper reports, set beside the proxy's differences
    analysis: calibration             # optional: analyse as a proxy calibration (every protocol's
                                      # ranking against published top-1, see analysis/calibration.py),
                                      # or truth (every protocol's ranking against the `truth` protocol)
    seeds: [0, 1, 2]
    dataset: cifar10
    data_root: ../shared/data/cifar10
    datasets: {shapes: {seeds: [0, 1]}, cifar10: {root: ../shared/data/cifar10, seeds: [0]}}
                                      # instead of dataset/data_root (`kind: datasets`): the same variants
                                      # on several datasets (seeds per dataset, default `seeds`);
                                      # analyze.py then reports how far the datasets' rankings agree
    protocols: {default: {epochs: 3, data_fraction: 0.2}}
                                      # a protocol may add `seeds: [0]` (instead of the study's) and
                                      # `spread: {variants: [a, b], seeds: [1, 2]}` (more seeds for a few)
    sizes: {smoke: {...}, full: {...}}
"""
from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spaces import MobileFormerSpace, SpaceError, fit_to_budget

from ..analysis.studies import analyze_variants
from ..common import UsageError, one_line, parse_budget, parse_params
from ..data import DATASETS, DEFAULT_DATASET
from ..models import get_config
from ..search.settings import SearchSettings, space_setting
from ..train import ProxyProtocol
from .registry import StudyKind, register
from .spec import sized_spec
from .training import run_variants

KEYS = {"study", "kind", "description", "analysis", "base", "budget", "variants", "sample", "search", "paper", "seeds",
        "dataset", "data_root", "datasets", "protocols", "sizes"}
DATASET_KEYS = {"root", "seeds"}
ANALYSES = ("standard", "calibration", "truth")
SCORED_ANALYSES = ("calibration", "truth")   # studies that may rank by zero-cost scores
PLAN_KEYS = ("seeds", "spread")              # keys of a protocol entry that say which runs it gets
SEARCH_KEYS = {"budgets", "trials", "backend", "objective", "confirm_top", "band", "cost", "space", "param_budget",
               "baseline_widths"}


@dataclass(frozen=True)
class BudgetSearches:
    """One search.py run per budget (and seed) under a single proxy protocol."""
    budgets: list[float]
    trials: list[int]                      # one per budget: small budgets want more proposals
    backend: str = "optuna"
    objective: str = "accuracy"
    confirm_top: int = 0                   # the merged front, not one winner, is what the study reports
    band: float = 0.0                      # a front over budgets wants every size a search finds (search.py: 0.9)
    cost: str = "flops"                    # a pareto search's second axis (search.py's --cost)
    param_budget: float | None = None      # search.py's --param-budget
    baseline_widths: int = 0               # search.py's --baseline-widths
    spaces: tuple[str | None, ...] = (None,)   # space names or files (search.py's --space); None: the default

    def run_name(self, budget: float, seed: int, space: str | None = None) -> str:
        # adding seeds keeps seed 0's folder; a second space adds its name
        tag = f"-{Path(space).stem}" if space is not None and len(self.spaces) > 1 else ""
        return f"{budget / 1e6:g}M" + tag + (f"-seed{seed}" if seed else "")


@dataclass(frozen=True)
class StudyData:
    """One dataset a study trains on, with the seeds it gets there."""
    name: str
    root: str | None
    seeds: list[int]


@dataclass(frozen=True)
class Study:
    name: str
    size: str
    kind: str
    variants: dict[str, Any]                       # variant name -> config
    datasets: list[StudyData]                      # usually one
    protocols: dict[str, ProxyProtocol]
    description: str = ""
    budget: float | None = None
    search: BudgetSearches | None = None
    paper: dict | None = None
    analysis: str = "standard"
    source: dict = field(default_factory=dict)
    plans: dict[str, dict] = field(default_factory=dict)   # protocol -> {seeds, spread} where it narrows runs

    def wants(self, data: StudyData, protocol: str, variant: str, seed: int) -> bool:
        """Whether the study trains this (dataset, protocol, variant, seed)."""
        plan = self.plans.get(protocol) or {}
        if seed in plan.get("seeds", data.seeds):
            return True
        spread = plan.get("spread") or {}
        return variant in spread.get("variants", ()) and seed in spread.get("seeds", ())

    def jobs(self) -> list[tuple[StudyData, str, str, int]]:
        """Every run of the study, in order: dataset, protocol, then variant and seed."""
        return [(d, p, v, s) for d in self.datasets for p in self.protocols for v in self.variants
                for s in self.all_seeds(d, p) if self.wants(d, p, v, s)]

    def all_seeds(self, data: StudyData, protocol: str) -> list[int]:
        plan = self.plans.get(protocol) or {}
        extra = (plan.get("spread") or {}).get("seeds", [])
        return sorted({*plan.get("seeds", data.seeds), *extra})

    @property
    def dataset(self) -> str:
        return self.datasets[0].name

    @property
    def data_root(self) -> str | None:
        return self.datasets[0].root

    @property
    def seeds(self) -> list[int]:
        return self.datasets[0].seeds


def load_classification(path: Path, raw: dict, size: str, kind: str, check: Callable[[Study], None]) -> Study:
    """A classification study file of `kind`, checked and cut to `size`; `check(study)`
    raises ValueError where the kind wants more. Every problem is a one-line UsageError."""
    spec = sized_spec(path, raw, size, KEYS)
    budget = parse_budget(str(spec["budget"])) if spec.get("budget") else None
    try:
        entries = spec.get("protocols") or {"default": {}}
        protocols = {n: ProxyProtocol(**{k: v for k, v in (p or {}).items() if k not in PLAN_KEYS})
                     for n, p in entries.items()}
        search = _searches(spec, protocols) if "search" in spec else None
        repo = path.resolve().parents[1]   # paths in a study file are relative to the repository
        variants = {} if search else _variants(spec, budget, repo)
        paper = _paper(spec.get("paper"), variants)
        analysis = str(spec.get("analysis", kind if kind in SCORED_ANALYSES else "standard"))
        if analysis not in ANALYSES:
            raise ValueError(f"`analysis` is one of {', '.join(ANALYSES)}, got {analysis!r}")
        datasets = parse_datasets(spec, repo)
        if search and len(datasets) > 1:
            raise ValueError("a search study runs on one dataset; give `dataset`, not `datasets`")
        scored = [n for n, p in protocols.items() if p.score is not None]
        if scored and (analysis not in SCORED_ANALYSES or search):
            raise ValueError(f"zero-cost protocols ({', '.join(scored)}) rank by a score, not top-1: they belong "
                             "in a study with `analysis: calibration` or `truth`, not in a search or a standard "
                             "study")
        plans = _plans(entries, variants)
        if analysis == "truth" and "truth" not in protocols:
            raise ValueError("a study with `analysis: truth` names one protocol `truth`, the long training "
                             "every other protocol is ranked against")
        study = Study(name=spec.get("study", path.stem), size=size, kind=kind, variants=variants,
                      datasets=datasets, protocols=protocols, description=spec.get("description", ""),
                      budget=budget, search=search, paper=paper, analysis=analysis, source=spec, plans=plans)
        check(study)
    except (TypeError, ValueError, KeyError) as exc:
        raise UsageError(f"experiment {path.stem}: {one_line(exc)}") from None
    return study


def _check(study: Study) -> None:
    if study.search:
        raise ValueError("a study of searches (`search:`) is `kind: budgets`")


def load_variants(path: Path, raw: dict, size: str) -> Study:
    return load_classification(path, raw, size, "variants", _check)


def parse_datasets(spec: dict, repo: Path) -> list[StudyData]:
    """`dataset`/`data_root`/`seeds`, or a `datasets` mapping; roots are relative to the repository."""
    def absolute(root: str | None) -> str | None:
        return str((repo / root).resolve()) if root and not Path(root).is_absolute() else root

    seeds = [int(s) for s in spec.get("seeds", [0])]
    many = spec.get("datasets")
    if many is None:
        return [StudyData(str(spec.get("dataset", DEFAULT_DATASET)), absolute(spec.get("data_root")), seeds)]
    if "dataset" in spec or "data_root" in spec:
        raise ValueError("give `datasets` or `dataset`/`data_root`, not both")
    if not isinstance(many, dict) or not many or any(not isinstance(v, dict | None) or set(v or {}) - DATASET_KEYS
                                                     for v in many.values()):
        raise ValueError("`datasets` maps a dataset name to {root: PATH, seeds: [..]} (both optional)")
    unknown = [n for n in many if n not in DATASETS]
    if unknown:
        raise ValueError(f"unknown dataset(s) {', '.join(map(str, unknown))} in `datasets`; choose from "
                         f"{', '.join(DATASETS)}")
    return [StudyData(str(name), absolute((v or {}).get("root")), [int(s) for s in (v or {}).get("seeds", seeds)])
            for name, v in many.items()]


def _searches(spec: dict, protocols: dict[str, ProxyProtocol]) -> BudgetSearches:
    s = spec["search"]
    if not isinstance(s, dict) or set(s) - SEARCH_KEYS or not isinstance(s.get("budgets"), list) or not s["budgets"]:
        raise ValueError("`search` takes budgets (a non-empty list such as [25M, 50M]) and optionally "
                         f"{', '.join(sorted(SEARCH_KEYS - {'budgets'}))}")
    if "variants" in spec or "sample" in spec:
        raise ValueError("give `search` or `variants`/`sample`, not both")
    if len(protocols) != 1:
        raise ValueError("a search study takes exactly one protocol")
    try:
        budgets = [parse_budget(str(b)) for b in s["budgets"]]
        trials = s.get("trials", 12)
        trials = [int(t) for t in trials] if isinstance(trials, list) else [int(trials)] * len(budgets)
        if len(trials) != len(budgets):
            raise ValueError(f"`search` has {len(budgets)} budgets but {len(trials)} trial counts")
        out = BudgetSearches(budgets=budgets, trials=trials, backend=s.get("backend", "optuna"),
                             objective=s.get("objective", "accuracy"), confirm_top=int(s.get("confirm_top", 0)),
                             band=float(s.get("band", 0.0)), cost=str(s.get("cost", "flops")),
                             param_budget=parse_params(str(s["param_budget"])) if "param_budget" in s else None,
                             baseline_widths=int(s.get("baseline_widths", 0)),
                             spaces=tuple(_spaces(s.get("space"))))
        for t in trials:
            SearchSettings(budget=budgets[0], backend=out.backend, objective=out.objective, trials=t, name="check",
                           band=out.band, cost=out.cost, param_budget=out.param_budget,
                           baseline_widths=out.baseline_widths)
        for space in out.spaces:
            space_setting(space)
    except (UsageError, SpaceError) as exc:  # worded for the command line: say it is the file's `search` entry
        raise ValueError(f"search: {str(exc).replace('--', '')}") from None
    return out


def _spaces(entry: Any) -> list[str | None]:
    """`space: NAME` or `space: [NAME, FILE, ...]` (one search per space); none: the default space."""
    if entry is None:
        return [None]
    names = entry if isinstance(entry, list) else [entry]
    if not names or not all(isinstance(n, str) for n in names):
        raise ValueError("`space` is a space name or file, or a list of them")
    stems = [Path(n).stem for n in names]   # each search's run name carries its space's stem
    clash = next((n for n, st in zip(names, stems) if stems.count(st) > 1), None)
    if clash is not None:
        raise ValueError(f"`space` lists two spaces named {Path(clash).stem!r}: their searches would share "
                         "a folder; rename one file")
    return names


def _paper(paper: dict | None, variants: dict[str, Any]) -> dict | None:
    """`paper: {reference: V, delta: {V2: x}, metric: ...}`: the paper's differences to V."""
    if paper is None:
        return None
    if not isinstance(paper, dict) or set(paper) - {"reference", "delta", "metric"} or "reference" not in paper:
        raise ValueError("`paper` takes reference (a variant), delta ({variant: points}) and metric")
    unknown = [v for v in [paper["reference"], *(paper.get("delta") or {})] if v not in variants]
    if unknown:
        raise ValueError(f"`paper` names variants the study lacks: {', '.join(unknown)}")
    return {"reference": paper["reference"], "metric": str(paper.get("metric", "as published")),
            "delta": {k: float(v) for k, v in (paper.get("delta") or {}).items()}}


def _plans(entries: dict, variants: dict[str, Any]) -> dict[str, dict]:
    """Each protocol's `seeds` and `spread` entries, checked against the study's variants."""
    plans = {}
    for name, p in entries.items():
        plan = {k: v for k, v in (p or {}).items() if k in PLAN_KEYS}
        if "seeds" in plan:
            plan["seeds"] = [int(x) for x in plan["seeds"]]
        if "spread" in plan:
            spread = plan["spread"]
            if not isinstance(spread, dict) or set(spread) != {"variants", "seeds"}:
                raise ValueError(f"protocol {name}: `spread` takes variants (a list) and seeds (a list)")
            unknown = [v for v in spread["variants"] if v not in variants]
            if unknown:
                raise ValueError(f"protocol {name}: `spread` names variants the study lacks: {', '.join(unknown)}")
            plan["spread"] = {"variants": list(spread["variants"]), "seeds": [int(x) for x in spread["seeds"]]}
        if plan:
            plans[name] = plan
    return plans


def _variants(spec: dict, budget: float | None, repo: Path) -> dict[str, Any]:
    """Named variants (each width-fitted into [0.9 B, B] when the study has a budget), then random draws.
    A `model` may be a config JSON file, relative to the repository like every path of a study file."""
    out = {}
    for name, over in (spec.get("variants") or {}).items():
        over = dict(over or {})
        model = over.pop("model", spec.get("base"))
        if isinstance(model, str) and model.endswith(".json") and not Path(model).is_absolute():
            model = str(repo / model)
        cfg = get_config(model, **over)
        out[name] = fit_to_budget(cfg, budget) if budget is not None else cfg
    if "sample" in spec:
        s = spec["sample"]
        cap = parse_budget(str(s["budget"]))
        rng = random.Random(int(s.get("seed", 0)))
        space = MobileFormerSpace()
        draw = (lambda: space.sample_in_band(rng, cap, float(s["band"]))) if s.get("band") \
            else (lambda: space.sample(rng, max_flops=cap))
        out.update({f"sample{i:02d}": draw() for i in range(int(s["count"]))})
    if not out:
        raise ValueError("no variants: give `variants` or `sample`")
    return out


register(StudyKind("variants", load_variants, run_variants, analyze_variants, workers=True))


def register_ranking_kind(name: str, analyze: Callable[[Path, dict, Path], Any]) -> StudyKind:
    """A kind whose fixed variants train on one dataset under several protocols, each ranked
    against a reference by `analyze` (`calibration`: published top-1; `truth`: long training)."""
    def check(study: Study) -> None:
        if study.search or study.analysis != name or len(study.datasets) > 1:
            raise ValueError(f"a `{name}` study trains fixed variants on one dataset (no `search`, `datasets` or "
                             "other `analysis`)")

    return register(StudyKind(name, lambda path, raw, size: load_classification(path, raw, size, name, check),
                              run_variants, analyze, workers=True))
