"""Run folders in, one tidy DataFrame out.

A run folder is what search.py writes: run.json (settings, start time, versions) and
trials.parquet and/or baselines.parquet in the schema of `mfsearch.records.rows`.
Every row is tagged with its run, backend, dataset and protocol, and `source` says
whether it is a search trial or a MobileNetV3 baseline, so figures and tables can
group rows without going back to the folders.
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..common import UsageError, one_line
from ..records.rows import BASE_COLUMNS
from ..records.runjson import RUN_JSON, folder_kind, read_run_json

REQUIRED = ("trial_id", "status", "config", "flops", "final_top1")
FEATURES = ["tokens", "token_dim", "width_mult", "resolution", "depth", "expansion", "variant"]


class AnalysisError(UsageError):
    """Bad input the user can fix; the CLI prints the one-line message and exits with 2."""


@dataclass(frozen=True)
class RunInfo:
    """What run.json says about one run, reduced to what the analysis reports."""

    path: Path
    name: str
    backend: str
    dataset: str
    protocol: dict[str, Any]
    budget: float
    seed: Any
    started: str | None
    status: str | None
    versions: dict[str, str]
    git_commit: str | None
    latency_budget: float | None = None     # ms, when the run had one
    param_budget: float | None = None       # parameters (1000-class head), when the run had one
    cost: str = "flops"                     # the cost axis of a pareto run

    @property
    def protocol_key(self) -> str:
        return json.dumps(self.protocol, sort_keys=True)


@dataclass
class RunSet:
    """The merged rows of one or more runs, with the runs they came from."""

    runs: list[RunInfo]
    df: pd.DataFrame
    mixed: bool = False
    latency_box: float | None = None    # ms: a latency hypervolume reference shared with other reports

    @property
    def budget(self) -> float:
        """The largest budget: the hypervolume reference's x (a fixed, stated convention)."""
        return max(r.budget for r in self.runs)

    @property
    def reference(self) -> tuple[float, float]:
        """Hypervolume reference point: (max budget in MAdds, 0 % top-1)."""
        return self.budget, 0.0

    @property
    def trials(self) -> pd.DataFrame:
        return self.df[self.df["source"] == "trial"]

    @property
    def baselines(self) -> pd.DataFrame:
        return self.df[self.df["source"] == "baseline"]


def is_run_dir(path: Path) -> bool:
    """A search run's folder (a study folder has a run.json too; a corrupt one still counts
    here, so the reader can say it is unreadable)."""
    return (path / RUN_JSON).is_file() and folder_kind(path) != "study"


def latest_run(root: Path | str = "runs") -> Path:
    """The most recently started run under `root` (run.json 'started', else its mtime)."""
    root = Path(root)
    if not root.is_dir():
        raise AnalysisError(f"no {root}/ folder here; pass a run folder (python analyze.py runs/NAME)")
    runs = [p for p in root.iterdir() if p.is_dir() and is_run_dir(p)]
    if not runs:
        raise AnalysisError(f"{root}/ holds no run folders (none has a run.json); run search.py first")
    return max(runs, key=_start_time)


def _start_time(path: Path) -> float:
    try:
        started = (read_run_json(path) or {}).get("started")
        return dt.datetime.fromisoformat(started).timestamp()
    except (OSError, ValueError, TypeError, AttributeError):
        return (path / RUN_JSON).stat().st_mtime


def read_run_info(path: Path) -> RunInfo:
    if not path.exists():
        raise AnalysisError(f"{path}: no such folder")
    if not path.is_dir():
        raise AnalysisError(f"{path}: not a folder; pass a run folder written by search.py")
    if not is_run_dir(path):
        inner = sorted(p.name for p in path.iterdir() if p.is_dir() and is_run_dir(p))
        if inner:
            raise AnalysisError(f"{path} is not a run but holds {len(inner)} runs ({', '.join(inner[:4])}"
                                f"{', ...' if len(inner) > 4 else ''}); pass one or more of them")
        raise AnalysisError(f"{path}: no run.json, not a run folder written by search.py")
    try:
        meta = read_run_json(path) or {}
        settings = meta["settings"]
        budget = float(settings["budget"])
    except (ValueError, KeyError, TypeError) as exc:
        raise AnalysisError(f"{path / 'run.json'}: unreadable ({type(exc).__name__}: "
                            f"{one_line(exc)[:200]})") from None
    return RunInfo(path=path, name=str(settings.get("name") or path.name), backend=str(settings.get("backend")),
                   dataset=str(settings.get("dataset")), protocol=dict(settings.get("protocol") or {}),
                   budget=budget, seed=settings.get("seed"), started=meta.get("started"),
                   status=meta.get("status"), versions=dict(meta.get("versions") or {}),
                   git_commit=meta.get("git_commit"), latency_budget=settings.get("latency_budget"),
                   param_budget=settings.get("param_budget"), cost=str(settings.get("cost") or "flops"))


def _read_table(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many types for a torn or foreign file
        raise AnalysisError(f"{path}: unreadable ({type(exc).__name__}: {one_line(exc)[:200]})") from None
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise AnalysisError(f"{path}: not a results table (missing columns {', '.join(missing)})")
    return df


def config_features(config: str | None) -> dict[str, Any]:
    """The searched dimensions as the analysis plots them, read from the config JSON
    (the authority: search-space columns differ between spaces and families)."""
    try:
        cfg = json.loads(config) if isinstance(config, str) else {}
    except ValueError:
        cfg = {}
    rows = cfg.get("blocks") or []
    return {"tokens": cfg.get("tokens"), "token_dim": cfg.get("token_dim"),
            "width_mult": cfg.get("width_mult"), "resolution": cfg.get("resolution"),
            "depth": sum(r[3] for r in rows) if rows else None,
            "expansion": float(np.mean([r[1] for r in rows])) if rows else None,
            "variant": cfg.get("variant")}


def fmt_width(w: float) -> str:
    """A width multiplier as papers write it: 1.0, 0.75, 1.15."""
    text = f"{float(w):.2f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def short_summary(f: dict[str, Any]) -> str:
    """A config in a few characters, e.g. '6x192 tok, w1.0, d12, r224' (MobileNetV3: 'MNv3-L 0.75, r224')."""
    if f.get("variant"):
        return f"MNv3-{str(f['variant'])[0].upper()} {fmt_width(f['width_mult'])}, r{f['resolution']}"
    if f.get("tokens") is None:
        return "?"
    return f"{f['tokens']}x{f['token_dim']} tok, w{fmt_width(f['width_mult'])}, d{f['depth']}, r{f['resolution']}"


def _tidy(raw: pd.DataFrame, info: RunInfo, label: str, source: str) -> pd.DataFrame:
    df = raw.copy()
    if "reused_from" in df:  # a copy of an earlier trial's row is not a second sample of the space
        df = df[df["reused_from"].isna()]
    if pd.api.types.is_integer_dtype(df["trial_id"]):   # Optuna numbers trials; Ray ids are hex strings
        df = df.sort_values("trial_id", kind="stable")
    df = df.reset_index(drop=True)
    feats = pd.DataFrame([config_features(c) for c in df["config"]], index=df.index, columns=FEATURES)
    for col in feats.columns:  # the config wins over table columns of the same name
        df[col] = feats[col]
    df["summary"] = [short_summary(f) for f in feats.to_dict("records")]
    df["trial_id"] = df["trial_id"].astype(str)
    df["order"] = np.arange(1, len(df) + 1)
    df["source"] = source
    df["run"] = label
    df["backend"] = info.backend
    df["dataset"] = info.dataset
    df["protocol"] = info.protocol_key
    df["budget"] = info.budget
    for col in ("flops", "params", "final_top1", "best_top1", "tokens", "token_dim", "width_mult", "resolution",
                "depth", "expansion"):
        if col in df.columns:
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    return df


def _labels(paths: list[Path]) -> list[str]:
    """Run labels: folder names, or parent/name where two folders share a name."""
    names = [p.name for p in paths]
    return [f"{p.parent.name}/{p.name}" if names.count(p.name) > 1 else p.name for p in paths]


def mixed_fields(runs: list[RunInfo]) -> str | None:
    """Which of dataset / protocol differ between runs, in one line (None if none do)."""
    parts = []
    datasets = list(dict.fromkeys(r.dataset for r in runs))
    if len(datasets) > 1:
        parts.append("dataset " + " vs ".join(datasets))
    keys = sorted({k for r in runs for k in r.protocol})
    diffs = []
    for key in keys:
        values = list(dict.fromkeys(json.dumps(r.protocol[key]) if key in r.protocol else "unset" for r in runs))
        if len(values) > 1:
            diffs.append(f"{key} " + " vs ".join(values))
    if diffs:
        parts.append("protocol (" + ", ".join(diffs) + ")")
    return "; ".join(parts) or None


def load_runs(paths: Iterable[Path | str], allow_mixed: bool = False) -> RunSet:
    """Merge run folders into one tidy frame. Runs measured on different datasets or
    proxy protocols are not comparable, so merging them needs `allow_mixed`."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise AnalysisError("no run folders given")
    infos = [read_run_info(p) for p in paths]
    differ = mixed_fields(infos)
    if differ and not allow_mixed:
        raise AnalysisError(f"runs are not comparable, they differ in {differ}; pass --allow-mixed to merge anyway")
    frames = []
    for info, label in zip(infos, _labels(paths)):
        tables = {s: _read_table(info.path / f"{s}s.parquet") for s in ("trial", "baseline")}
        if all(t is None for t in tables.values()):
            raise AnalysisError(f"{info.path}: no trials.parquet or baselines.parquet yet "
                                f"(run status: {info.status or 'unknown'})")
        frames += [_tidy(t, info, label, s) for s, t in tables.items() if t is not None]
    df = pd.concat([f for f in frames if not f.empty] or frames[:1], ignore_index=True)
    front_cols = ["source", "run", "backend", "dataset", "protocol", "budget", "order", "summary"]
    extra = [c for c in df.columns if c not in BASE_COLUMNS and c not in front_cols]
    df = df[front_cols + [c for c in BASE_COLUMNS if c in df.columns and c not in front_cols] + extra]
    # baselines are cached by dataset, protocol, seed and architecture: runs at several
    # budgets share them, and each should count once
    base = df["source"] == "baseline"
    dup = base & df.duplicated(subset=["source", "trial_id", "dataset", "protocol", "seed", "final_top1"])
    return RunSet(runs=infos, df=df[~dup].reset_index(drop=True), mixed=differ is not None)
