"""The `search_quality` study kind: does a search's pick hold up under long training?

Each arm is a way to search (search.py's settings: the default, the default before the band
and the finalists' rung, random sampling in the band...). Every arm searches at the same
budget with each seed on each dataset (one resumable search.py run each), and the
architecture each run picks is then trained under that dataset's `truth` protocol (long
training on the same data). analyze.py sets each pick's truth against the best truth of a
reference set of the same band (a `truth` study's folder) and against the MobileNetV3 of the
same cost there (mfsearch.analysis.quality). File layout:

    study: search_quality
    kind: search_quality
    budget: 150M
    protocol: {}                  # optional: the trials' protocol (default: search.py's)
    arms:                         # search.py settings per arm ({} is its defaults), incl. space, param_budget
      default: {}
      random: {sampler: random}
      before: {trials: 16, band: 0, min_steps: 0, confirm_top: 3, confirm_seeds: 2, final_length: 1}
    seeds: [0, 1]
    datasets: {cifar10: {root: ../shared/data/cifar10}, shapes_hard: {}}
    truth:                        # per dataset: the long protocol every pick trains under (seed 0)
      cifar10: {epochs: 8, data_fraction: 1.0, test_fraction: 1.0}
    reference: {cifar10: docs/results/search_truth}   # optional: a truth study's folder per dataset
    sizes: {smoke: {...}, full: {}}

Rows: `rows.jsonl` holds one `truth` row per pick (variant `ARM-seedS`), searches live in
`searches/DATASET-ARM-seedS/`. Rerunning the command resumes both. A pick that an earlier
search already picked is not trained again: its row copies that truth row and names it in
`truth_of`. `--workers N` runs N searches (each with its pick's truth) side by side.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from spaces import SpaceError

from ..analysis.quality import analyze_quality
from ..common import UsageError, one_line, parse_budget, parse_params
from ..data import load_dataset
from ..models import get_config
from ..records.appended import append_rows, keyed_rows, read_rows
from ..records.rows import identity, row_from_proxy, to_frame
from ..records.tables import write_table
from ..search.run import run_search
from ..search.settings import SearchSettings, default_protocol, space_setting
from ..train import ProxyProtocol, device_name, train_proxy
from .budgets import search_finished
from .registry import StudyKind, register
from .spec import sized_spec
from .training import ROWS, row_key, side_by_side, write_run_json
from .variants import StudyData, parse_datasets

KEYS = {"study", "kind", "description", "budget", "protocol", "arms", "seeds", "dataset", "data_root", "datasets",
        "truth", "reference", "sizes"}
# what an arm may set: search.py's options that change how it searches (min_steps: its protocol's floor)
ARM_KEYS = {"trials", "band", "sampler", "confirm_top", "confirm_seeds", "final_length", "min_steps", "backend",
            "baselines", "space", "param_budget"}
TRUTH = "truth"


@dataclass(frozen=True)
class QualityStudy:
    name: str
    size: str
    budget: float
    arms: dict[str, dict]                     # arm -> SearchSettings overrides
    protocol: ProxyProtocol                   # every arm's trial protocol (search.py's unless the file says)
    datasets: list[StudyData]
    truth: dict[str, ProxyProtocol]           # dataset -> its truth protocol
    reference: dict[str, str] = field(default_factory=dict)   # dataset -> a truth study's folder
    description: str = ""
    source: dict = field(default_factory=dict)
    kind: str = "search_quality"

    def settings(self, data: StudyData, arm: str, seed: int, out: Path) -> SearchSettings:
        over = dict(self.arms[arm])
        protocol = replace(self.protocol, min_steps=int(over.pop("min_steps", self.protocol.min_steps)))
        space, space_file = space_setting(over.pop("space", None))
        if "param_budget" in over:
            over["param_budget"] = parse_params(str(over["param_budget"]))
        return SearchSettings(budget=self.budget, dataset=data.name, data_root=data.root, seed=seed,
                              protocol=protocol, name=f"{data.name}-{_variant(arm, seed)}", out=str(out / "searches"),
                              save_weights="none", space=space, space_file=space_file, **over)

    def runs(self) -> list[tuple[StudyData, str, int]]:
        """Every (dataset, arm, seed), seeds innermost so each arm's seeds finish together."""
        return [(d, a, s) for d in self.datasets for a in self.arms for s in d.seeds]


def load_quality(path: Path, raw: dict, size: str) -> QualityStudy:
    spec = sized_spec(path, raw, size, KEYS)
    try:
        if "budget" not in spec:
            raise ValueError("a search_quality study names the `budget` every arm searches at")
        arms = spec.get("arms")
        if not isinstance(arms, dict) or not arms:
            raise ValueError("`arms` maps an arm name to search.py settings ({} for its defaults)")
        for name, over in arms.items():
            bad = set(over or {}) - ARM_KEYS
            if bad:
                raise ValueError(f"arm {name}: unknown settings {sorted(bad)}; an arm sets "
                                 f"{', '.join(sorted(ARM_KEYS))}")
        datasets = parse_datasets(spec, path.resolve().parents[1])
        truth = spec.get("truth") or {}
        missing = [d.name for d in datasets if d.name not in truth]
        if missing:
            raise ValueError(f"`truth` gives no protocol for dataset(s) {', '.join(missing)}")
        repo = path.resolve().parents[1]   # paths in a study file are relative to the repository
        reference = {str(k): str((repo / str(v)).resolve()) for k, v in (spec.get("reference") or {}).items()}
        study = QualityStudy(name=spec.get("study", path.stem), size=size, budget=parse_budget(str(spec["budget"])),
                             arms={a: dict(o or {}) for a, o in arms.items()}, datasets=datasets,
                             protocol=replace(default_protocol(), **(spec.get("protocol") or {})),
                             truth={d.name: ProxyProtocol(**truth[d.name]) for d in datasets}, reference=reference,
                             description=spec.get("description", ""), source=spec)
        for d, arm, seed in study.runs():   # every arm's settings are valid before anything runs
            try:
                study.settings(d, arm, seed, Path("runs"))
            except (UsageError, SpaceError) as exc:
                raise ValueError(f"arm {arm}: {exc}") from None
    except (TypeError, ValueError, KeyError, UsageError, SpaceError) as exc:
        raise UsageError(f"experiment {path.stem}: {one_line(exc).replace('--', '')}") from None
    return study


def run_quality(study: QualityStudy, out: Path, log=print, save_weights: bool = False, workers: int = 1,
                threads: int | None = None, device: str = "cpu") -> Path:
    """Each (dataset, arm, seed): its search (resumed where it stopped), then its pick under
    the dataset's truth protocol, `workers` of them side by side at `threads` torch threads
    each (every search and its pick in one worker process). `save_weights` does not apply
    (picks are retrained)."""
    if workers < 1 or (threads is not None and threads < 1):
        raise UsageError("--workers and --threads must be at least 1")
    run_dir = Path(out) / study.name
    runs = study.runs()
    finished = [search_finished(study.settings(d, a, s, run_dir)) for d, a, s in runs]  # refuses foreign folders
    rows_path = run_dir / ROWS
    done = keyed_rows(rows_path, row_key)
    priors = [done.get(_truth_key(d.name, arm, seed)) for d, arm, seed in runs]
    for (d, _, _), prior in zip(runs, priors):   # refused before run.json takes the file's new spec
        if prior is not None:
            _check_truth_protocol(study.truth[d.name], prior, rows_path)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_run_json(study, run_dir, arms=study.arms, budget=study.budget, reference=study.reference,
                   device=device_name(device))
    todo = []
    for i, ((d, arm, seed), was_finished, prior) in enumerate(zip(runs, finished, priors), 1):
        if prior is not None and was_finished:
            _check_pick(study.settings(d, arm, seed, run_dir), prior, run_dir)
            log(f"[{i}/{len(runs)}] {d.name}-{_variant(arm, seed)}: search and its pick's truth already done")
        else:
            todo.append(((d, arm, seed), prior))
    if workers > 1:
        log(f"{len(todo)} searches and their picks' truth to run, {workers} at a time")
    with append_rows(rows_path) as write:
        for (d, arm, seed), row in _run_all(study, run_dir, todo, workers, threads, device, log):
            if row is None:
                log(f"{d.name}-{_variant(arm, seed)}: its search went on and kept its pick, whose truth is done")
                continue
            done[_truth_key(d.name, arm, seed)] = row
            write(row)
            log(f"[{len(done)}/{len(runs)}] {d.name}-{_variant(arm, seed)}: pick at {row['flops'] / 1e6:.1f}M, "
                f"truth top-1 {row['final_top1']}")
    write_table(to_frame(done.values()), run_dir, "trials")
    log(f"results: {run_dir}; next: python analyze.py {run_dir}")
    return run_dir


def _variant(arm: str, seed: int) -> str:
    """A search's name in the study's rows (its truth row's `variant`)."""
    return f"{arm}-seed{seed}"


def _truth_key(dataset: str, arm: str, seed: int) -> str:
    return row_key({"variant": _variant(arm, seed), "seed": 0, "protocol_name": TRUTH, "dataset": dataset})


def _check_truth_protocol(protocol: ProxyProtocol, prior: dict, rows_path: Path) -> None:
    """A truth row trained under another truth protocol than the file's now would mix two
    references in one table, so it stops the run (as a truth study's rows do)."""
    if ProxyProtocol.of_row(prior) != protocol:
        raise UsageError(f"{rows_path} holds {prior['variant']}'s truth on {prior['dataset']} under another truth "
                         f"protocol than the study file's; delete that row to retrain it, or pass another --out")


def _check_pick(settings: SearchSettings, prior: dict, run_dir: Path) -> bool:
    """True when `prior` (a truth row) trained the finished search's pick; another pick's is refused."""
    if json.loads(prior["config"]) == _pick(settings).to_dict():
        return True
    raise UsageError(f"{run_dir / ROWS} holds a truth row for another pick of {settings.name}; delete "
                     f"{run_dir} or pass another --out")


Run = tuple[StudyData, str, int]   # (dataset, arm, seed)
Job = tuple[Run, dict | None]      # and the truth row it already has, if any


def _run_all(study: QualityStudy, run_dir: Path, todo: list[Job], workers: int, threads: int | None, device: str,
             log) -> Iterator[tuple[Run, dict | None]]:
    """Each search and its pick's truth row, in this process or `workers` others (side_by_side),
    each as it finishes."""
    if workers == 1:
        loaded: dict[str, Any] = {}   # each dataset decoded once, for all its picks
        for run, prior in todo:
            yield run, _search_and_truth(study, run_dir, *run, prior, threads, device, loaded, log)
        return
    threads = threads or max(1, (os.cpu_count() or 1) // workers)
    for (run, _), row in side_by_side(partial(_job_in_worker, study, run_dir, threads, device), todo, workers):
        yield run, row


def _job_in_worker(study: QualityStudy, run_dir: Path, threads: int, device: str, job: Job) -> dict | None:
    (d, arm, seed), prior = job
    return _search_and_truth(study, run_dir, d, arm, seed, prior, threads, device, None, _print)


_WORKER_DATA: dict[str, Any] = {}   # a worker process's decoded datasets, kept across its picks


def _print(line: str) -> None:
    print(line, flush=True)


def _search_and_truth(study: QualityStudy, run_dir: Path, d: StudyData, arm: str, seed: int, prior: dict | None,
                      threads: int | None, device: str, loaded: dict[str, Any] | None, log) -> dict | None:
    """One search (resumed where it stopped) and its pick's truth row; None when the search
    kept the pick `prior` already trained (`loaded`: decoded datasets, None in a worker)."""
    settings = replace(study.settings(d, arm, seed, run_dir), threads=threads, device=device)
    if not search_finished(settings):
        log(f"search {settings.name}")
        run_search(settings)
    if prior is not None and _check_pick(settings, prior, run_dir):
        return None
    cfg = _pick(settings)
    same = _truth_done(run_dir, d.name, study.truth[d.name], cfg)
    if same is not None:   # two searches picked one architecture (e.g. a sampler's shared first draws)
        log(f"{settings.name}: its pick is {same['variant']}'s, whose truth is done: reused, not retrained")
        return {**same, "trial_id": f"{_variant(arm, seed)}/0/{TRUTH}", "variant": _variant(arm, seed), "arm": arm,
                "search_seed": seed, "truth_of": same.get("truth_of") or same["variant"]}
    loaded = _WORKER_DATA if loaded is None else loaded
    if d.name not in loaded:
        loaded[d.name] = load_dataset(d.name, root=d.root, seed=0)
    return _train_truth(study, d.name, loaded[d.name], arm, seed, cfg, threads, device, log)


def _truth_done(run_dir: Path, dataset: str, protocol: ProxyProtocol, cfg: Any) -> dict | None:
    """A complete truth row of this study for the same architecture, data and protocol (at the
    same seed 0 its training would be the same), or None."""
    path = run_dir / ROWS
    for row in read_rows(path) if path.is_file() else []:
        if (row.get("protocol_name") == TRUTH and row.get("status") == "complete" and row.get("dataset") == dataset
                and ProxyProtocol.of_row(row) == protocol and json.loads(row["config"]) == cfg.to_dict()):
            return row
    return None


def _pick(settings: SearchSettings) -> Any:
    """The config a finished search chose (its best.json)."""
    path = settings.run_dir / "best.json"
    if not path.is_file():
        raise UsageError(f"search {settings.name} finished without a pick (no complete trial); see its "
                         f"trials.csv in {settings.run_dir}, delete that folder and rerun")
    return get_config(str(path))


def _train_truth(study: QualityStudy, dataset: str, data: Any, arm: str, seed: int, cfg: Any, threads: int | None,
                 device: str, log) -> dict:
    variant = _variant(arm, seed)
    protocol = study.truth[dataset]
    r = train_proxy(cfg, data, protocol, seed=0, threads=threads, device=device,
                    log=lambda line: log(f"  {variant} {TRUTH}: {line}"))
    return row_from_proxy(r, **identity(f"{variant}/0/{TRUTH}", study.name, "study", cfg, 0, dataset, protocol,
                                        study=study.name, variant=variant, protocol_name=TRUTH, arm=arm,
                                        search_seed=seed))


register(StudyKind("search_quality", load_quality, run_quality, analyze_quality, workers=True))
