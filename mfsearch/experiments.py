"""Studies as files: `python search.py --experiment experiments/NAME.yaml [--size smoke|full]`.

A study trains a fixed list of architectures (`variants`), each under every seed, with
one proxy protocol per entry of `protocols` (one protocol unless the study compares
proxies), and writes the rows to `runs/NAME/trials.parquet` in the search results
schema plus `study`, `variant`, `protocol_name`. Finished (variant, seed, protocol)
triples are kept in `rows.jsonl` as they finish, so rerunning the command resumes.

File layout (every key can be overridden per size under `sizes:`):

    study: tokens
    description: ...
    base: mobile_former_151m          # registered name for variants without `model`
    budget: 150M                      # optional: width-fit each variant into [0.9 B, B]
    variants: {tokens1: {tokens: 1}, ...}   # overrides of MobileFormerConfig fields,
                                            # or {model: NAME}; or `sample:` (below)
    sample: {count: 12, budget: 150M, seed: 0, band: 0.9}   # random space draws named sampleNN (beside
                                                 # or instead of variants); with `band`, each draw lies in
                                                 # [band*B, B] (width-fitted up into it, or redrawn)
    search: {budgets: [25M, 50M], trials: 12}    # instead of variants: one search.py run per
                                                 # budget and seed, merged by analyze.py; trials
                                                 # may be a list, one per budget; confirm_top
                                                 # (default 0) as search.py's --confirm-top
    paper: {reference: tokens1, delta: {tokens3: 0.5}, metric: ImageNet top-1}  # what the
                                                 # paper reports, set beside the proxy's differences
    analysis: calibration             # optional: analyse as a proxy calibration (every protocol's
                                      # ranking against published top-1, see analysis/calibration.py),
                                      # or truth (every protocol's ranking against the `truth` protocol)
    seeds: [0, 1, 2]
    dataset: cifar10
    data_root: ../shared/data/cifar10
    datasets: {shapes: {seeds: [0, 1]}, cifar10: {root: ../shared/data/cifar10, seeds: [0]}}
                                      # instead of dataset/data_root: the same variants on several
                                      # datasets (seeds per dataset, default `seeds`); analyze.py then
                                      # reports how far the datasets' rankings agree
    protocols: {default: {epochs: 3, data_fraction: 0.2}}
                                      # a protocol may add `seeds: [0]` (instead of the study's) and
                                      # `spread: {variants: [a, b], seeds: [1, 2]}` (more seeds for a few)
    sizes: {smoke: {...}, full: {...}}
"""
from __future__ import annotations

import datetime as dt
import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from spaces import MobileFormerSpace, fit_to_budget

from .common import UsageError, one_line, parse_budget
from .data import DATASETS, DEFAULT_DATASET, load_dataset
from .models import get_config
from .models.checkpoint import save_checkpoint
from .runfolder import RUN_JSON, write_study_json
from .search.results import identity, row_from_proxy, to_frame, write_table
from .search.run import earlier_run, run_search
from .search.settings import SearchSettings
from .train import ProxyProtocol, train_proxy

KEYS = {"study", "description", "analysis", "base", "budget", "variants", "sample", "search", "paper", "seeds",
        "dataset", "data_root", "datasets", "protocols", "sizes"}
DATASET_KEYS = {"root", "seeds"}
ANALYSES = ("standard", "calibration", "truth")
SCORED_ANALYSES = ("calibration", "truth")   # studies that may rank by zero-cost scores
PLAN_KEYS = ("seeds", "spread")              # keys of a protocol entry that say which runs it gets
SEARCH_KEYS = {"budgets", "trials", "backend", "objective", "confirm_top", "band"}


@dataclass
class BudgetSearches:
    """One search.py run per budget (and seed) under a single proxy protocol."""
    budgets: list[float]
    trials: list[int]                      # one per budget: small budgets want more proposals
    backend: str = "optuna"
    objective: str = "accuracy"
    confirm_top: int = 0                   # the merged front, not one winner, is what the study reports
    band: float = 0.0                      # a front over budgets wants every size a search finds (search.py: 0.9)

    def run_name(self, budget: float, seed: int) -> str:
        return f"{budget / 1e6:g}M" + (f"-seed{seed}" if seed else "")  # adding seeds keeps seed 0's folder


@dataclass(frozen=True)
class StudyData:
    """One dataset a study trains on, with the seeds it gets there."""
    name: str
    root: str | None
    seeds: list[int]


@dataclass
class Study:
    name: str
    size: str
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


# a size's entry for these replaces the study's instead of merging into it
REPLACED_WHOLE = {"variants", "protocols", "sample", "search", "paper", "datasets"}


def merge_spec(base: dict, over: dict) -> dict:
    """A size's overrides over the study's keys (nested dicts merge, REPLACED_WHOLE keys are replaced)."""
    out = dict(base)
    for k, v in over.items():
        nested = isinstance(v, dict) and isinstance(out.get(k), dict) and k not in REPLACED_WHOLE
        out[k] = merge_spec(out[k], v) if nested else v
    return out


def read_study_file(path: str | Path) -> dict:
    """A study file's YAML; a missing or unparsable file is a one-line UsageError."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"experiment file {path} not found; see experiments/ for the studies provided")
    try:
        return yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UsageError(f"experiment file {path} is not valid YAML: {str(exc).splitlines()[0]}") from None


def load_study(path: str | Path, size: str = "smoke") -> Study:
    """Read and check a study file; every problem is a one-line UsageError."""
    path = Path(path)
    raw = read_study_file(path)
    if isinstance(raw, dict) and raw.get("kind") == "detection":
        raise UsageError(f"experiment file {path} is a detection study: run it with search.py --experiment, or "
                         "load it with mfsearch.detection.study.load_detection_study")
    if not isinstance(raw, dict) or set(raw) - KEYS:
        unknown = sorted(set(raw) - KEYS) if isinstance(raw, dict) else raw
        raise UsageError(f"experiment file {path}: unknown keys {unknown}")
    sizes = raw.get("sizes") or {}
    if size not in sizes:
        raise UsageError(f"experiment {path.stem} has no size {size!r}; choose one of {', '.join(sizes) or 'none'}")
    spec = merge_spec({k: v for k, v in raw.items() if k != "sizes"}, sizes[size] or {})
    budget = parse_budget(str(spec["budget"])) if spec.get("budget") else None
    try:
        entries = spec.get("protocols") or {"default": {}}
        protocols = {n: ProxyProtocol(**{k: v for k, v in (p or {}).items() if k not in PLAN_KEYS})
                     for n, p in entries.items()}
        search = _searches(spec, protocols) if "search" in spec else None
        variants = {} if search else _variants(spec, budget)
        paper = _paper(spec.get("paper"), variants)
        analysis = str(spec.get("analysis", "standard"))
        if analysis not in ANALYSES:
            raise ValueError(f"`analysis` is one of {', '.join(ANALYSES)}, got {analysis!r}")
        datasets = _datasets(spec, path.resolve().parents[1])
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
    except (TypeError, ValueError, KeyError) as exc:
        raise UsageError(f"experiment {path.stem}: {one_line(exc)}") from None
    return Study(name=spec.get("study", path.stem), size=size, variants=variants, datasets=datasets,
                 protocols=protocols, description=spec.get("description", ""), budget=budget,
                 search=search, paper=paper, analysis=analysis, source=spec, plans=plans)


def _datasets(spec: dict, repo: Path) -> list[StudyData]:
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
                             band=float(s.get("band", 0.0)))
        for t in trials:
            SearchSettings(budget=budgets[0], backend=out.backend, objective=out.objective, trials=t, name="check",
                           band=out.band)
    except UsageError as exc:  # worded for the command line: say it is the file's `search` entry
        raise ValueError(f"search: {str(exc).replace('--', '')}") from None
    return out


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


def _variants(spec: dict, budget: float | None) -> dict[str, Any]:
    """Named variants (each width-fitted into [0.9 B, B] when the study has a budget), then random draws."""
    out = {}
    for name, over in (spec.get("variants") or {}).items():
        over = dict(over or {})
        cfg = get_config(over.pop("model", spec.get("base")), **over)
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


def _key(variant: str, seed: int, protocol: str, dataset: str) -> str:
    return f"{variant}|{seed}|{protocol}|{dataset}"


def run_study(study: Study, out: str | Path = "runs", log=print, save_weights: bool = False) -> Path:
    """Train every (dataset, protocol, variant, seed) not done yet; `save_weights` keeps each
    complete run's weights in weights/VARIANT-seedS-PROTOCOL[-DATASET].pt."""
    run_dir = Path(out) / study.name
    if study.search:
        return _run_searches(study, run_dir, log)
    run_dir.mkdir(parents=True, exist_ok=True)
    rows_path = run_dir / "rows.jsonl"
    done = _finished_rows(study, rows_path)
    _write_run_json(study, run_dir)
    jobs = study.jobs()
    seeds = " + ".join(f"{len(d.seeds)} seeds on {d.name}" for d in study.datasets)
    log(f"study {study.name} ({study.size}): {len(study.variants)} variants x {len(study.protocols)} protocols x "
        f"{seeds}; {len(done)} of {len(jobs)} already done")
    started, trained, loaded = time.time(), 0, {}
    with rows_path.open("a") as sink:
        for d, pname, variant, seed in jobs:
            key = _key(variant, seed, pname, d.name)
            if key in done:
                continue
            if d.name not in loaded:  # only datasets with work left are read
                loaded = {d.name: load_dataset(d.name, root=d.root, seed=0)}
            cfg = study.variants[variant]
            r = train_proxy(cfg, loaded[d.name], study.protocols[pname], seed=seed, keep_weights=save_weights,
                            log=lambda line, v=variant, s=seed, p=pname: log(f"  {v} seed {s} {p}: {line}"))
            row = row_from_proxy(r, **identity(f"{variant}/{seed}/{pname}", study.name, "study", cfg, seed,
                                               d.name, study.protocols[pname], study=study.name,
                                               variant=variant, protocol_name=pname))
            if r.state_dict is not None:
                tag = f"-{d.name}" if len(study.datasets) > 1 else ""
                save_checkpoint(run_dir / "weights" / f"{variant}-seed{seed}-{pname}{tag}.pt", cfg, r.num_classes,
                                r.state_dict, dataset=d.name, data_root=d.root, data_seed=0,
                                resolution=r.proxy_resolution, protocol=study.protocols[pname].to_dict(), seed=seed,
                                study=study.name, variant=variant, final_top1=r.final_top1)
            sink.write(json.dumps(row) + "\n")
            sink.flush()
            done[key] = row
            trained += 1
            left = len(jobs) - len(done)
            eta = f", ETA {dt.timedelta(seconds=round((time.time() - started) / trained * left))}" if left else ""
            where = f" on {d.name}" if len(study.datasets) > 1 else ""
            log(f"[{len(done)}/{len(jobs)}] {variant} seed {seed} {pname}{where}: "
                f"{'top1' if r.final_top1 is not None else 'score'} {r.score} "
                f"at {row['flops'] / 1e6:.1f}M ({r.wall_time:.0f} s{eta})")
    write_table(to_frame(done.values()), run_dir, "trials")
    log(f"results: {run_dir}/trials.parquet; next: python analyze.py {run_dir}")
    return run_dir


def _finished_rows(study: Study, rows_path: Path) -> dict[str, dict]:
    """Rows already trained; a row whose architecture or protocol no longer matches the
    file would silently mix two studies, so it stops the run instead."""
    done: dict[str, dict] = {}
    if not rows_path.is_file():
        return done
    data = {d.name: d for d in study.datasets}
    for n, line in enumerate(rows_path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            key = _key(row["variant"], row["seed"], row["protocol_name"], row["dataset"])
        except (ValueError, KeyError):
            raise UsageError(f"{rows_path} line {n} is unreadable; delete that line to retrain it") from None
        cfg, proto = study.variants.get(row["variant"]), study.protocols.get(row["protocol_name"])
        if cfg is None or proto is None or row["dataset"] not in data \
                or not study.wants(data[row["dataset"]], row["protocol_name"], row["variant"], row["seed"]):
            continue  # dropped from the file: kept on disk, left out of this study's table
        stored = ProxyProtocol.from_dict(json.loads(row["protocol"])).to_dict()  # older rows lack newer fields
        if json.loads(row["config"]) != cfg.to_dict() or stored != proto.to_dict():
            raise UsageError(f"{rows_path.parent} holds results for a different version of {row['variant']!r} "
                             f"(architecture or protocol changed); pass another --out or delete that folder")
        done[key] = row
    return done


def _write_run_json(study: Study, run_dir: Path, **extra: Any) -> None:
    write_study_json(run_dir, {"study": study.name, "size": study.size, "description": study.description,
                               "spec": study.source, "paper": study.paper, **extra})


def _run_searches(study: Study, run_dir: Path, log) -> Path:
    """The `budgets` kind of study: one resumable search.py run per budget and seed."""
    (protocol,) = study.protocols.values()
    sch = study.search
    settings = [SearchSettings(budget=b, backend=sch.backend, objective=sch.objective, trials=t,
                               confirm_top=sch.confirm_top, band=sch.band,
                               dataset=study.dataset, data_root=study.data_root, protocol=protocol, seed=s,
                               name=sch.run_name(b, s), out=str(run_dir))
                for b, t in zip(sch.budgets, sch.trials) for s in study.seeds]
    finished = [_search_state(st) for st in settings]  # raises before anything is written
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_run_json(study, run_dir, searches=[st.name for st in settings])
    for i, (st, done) in enumerate(zip(settings, finished), 1):
        if done:
            log(f"[{i}/{len(settings)}] search {st.name}: already finished")
            continue
        log(f"[{i}/{len(settings)}] search {st.name} ({st.trials} trials, {sch.backend}, {sch.objective})")
        run_search(st)
    log(f"results: {len(settings)} searches in {run_dir}; next: python analyze.py {run_dir}")
    return run_dir


def _search_state(settings) -> bool:
    """True when this search already finished; refuses a folder holding a different search."""
    if not (settings.run_dir / RUN_JSON).is_file():
        return False
    meta, diff = earlier_run(settings, f"delete {settings.run_dir} or pass another --out")
    if diff:
        raise UsageError(f"{settings.run_dir} holds a search with other settings than this study file asks for; "
                         "delete that folder or pass another --out")
    # more trials than last time: run_search resumes the same study and adds the difference
    return meta.get("status") == "finished" and meta["settings"].get("trials") == settings.trials
