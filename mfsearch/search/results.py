"""The results schema, in one place: what search writes and analysis reads.

One row per trial (and per baseline) with: trial_id, run, backend, family, status
(complete / pruned / infeasible / failed), every searched dimension as its own column,
`config` (JSON that `mfsearch.create_model` rebuilds), flops (multiply-adds at the
architecture's resolution, 1000 classes), params, proxy_resolution, top1_per_epoch
(JSON list, %), final_top1, best_top1, score (what ranks the row: final_top1 for a
trained protocol, the zero-cost score for a 0-epoch one), train_loss (JSON list), epochs_done,
wall_time, train_time, images_per_s (training), error, seed, dataset, protocol (JSON).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

STATUSES = ("complete", "pruned", "infeasible", "failed")
BASE_COLUMNS = ["trial_id", "run", "backend", "family", "status", "config", "flops", "params",
                "proxy_resolution", "top1_per_epoch", "final_top1", "best_top1", "score", "train_loss", "epochs_done",
                "wall_time", "train_time", "images_per_s", "error", "seed", "dataset", "protocol"]


def make_row(**values: Any) -> dict[str, Any]:
    """A row with every base column present (None where unknown); lists stored as JSON."""
    row = {c: None for c in BASE_COLUMNS}
    row.update(values)
    for key in ("top1_per_epoch", "train_loss", "protocol", "config"):
        if row[key] is not None and not isinstance(row[key], str):
            row[key] = json.dumps(row[key], sort_keys=True)
    assert row["status"] in STATUSES, row["status"]
    return row


def row_from_proxy(result: Any, **fields: Any) -> dict[str, Any]:
    """A row from a `ProxyResult`; `fields` add identity columns or override measured ones."""
    values = dict(status=result.status, flops=result.flops, params=result.params,
                  proxy_resolution=result.proxy_resolution, top1_per_epoch=result.top1,
                  final_top1=result.final_top1, best_top1=result.best_top1, score=result.score, train_loss=result.train_loss,
                  epochs_done=result.epochs_done, wall_time=result.wall_time,
                  train_time=round(result.train_time, 3), images_per_s=result.images_per_s, error=result.error)
    values.update(fields)
    return make_row(**values)


def to_frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame(list(rows))
    if df.empty:
        return pd.DataFrame(columns=BASE_COLUMNS)
    extra = [c for c in df.columns if c not in BASE_COLUMNS]
    df = df[BASE_COLUMNS[:5] + extra + BASE_COLUMNS[5:]]
    for col in ("flops", "params", "proxy_resolution", "epochs_done", "seed"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("Int64")
    for col in ("final_top1", "best_top1", "score", "wall_time", "train_time", "images_per_s"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    return df


def write_table(df: pd.DataFrame, run_dir: Path, stem: str) -> None:
    """Parquet and CSV side by side, each written to a temp file and renamed (no torn files)."""
    for suffix in (".parquet", ".csv"):
        path = run_dir / f"{stem}{suffix}"
        tmp = path.with_name(path.name + ".tmp")
        if suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False)
        tmp.replace(path)


def best_row(df: pd.DataFrame) -> pd.Series | None:
    done = df[df["status"] == "complete"].dropna(subset=["final_top1"])
    if done.empty:
        return None
    return done.sort_values(["final_top1", "flops"], ascending=[False, True]).iloc[0]


def write_best(run_dir: Path, row: pd.Series) -> Path:
    """best.json holds the config under 'config' so `mfsearch.create_model(path)` rebuilds it."""
    path = run_dir / "best.json"
    path.write_text(json.dumps({
        "config": json.loads(row["config"]), "trial_id": str(row["trial_id"]),
        "final_top1": float(row["final_top1"]), "flops": int(row["flops"]), "params": int(row["params"]),
        "run": str(row["run"])}, indent=2))
    return path

