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
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

STATUSES = ("complete", "pruned", "infeasible", "failed")
BASE_COLUMNS = ["trial_id", "run", "backend", "family", "status", "config", "flops", "params",
                "proxy_resolution", "top1_per_epoch", "final_top1", "best_top1", "score", "train_loss", "epochs_done",
                "wall_time", "train_time", "images_per_s", "error", "seed", "dataset", "num_classes", "protocol"]


def identity(trial_id: Any, run: str, backend: str, config: Any, seed: int, dataset: str, protocol: Any,
             **extra: Any) -> dict[str, Any]:
    """The columns that say what a row is: the one place they are built. `config` is a
    model config (its `family` names the family); `protocol` a ProxyProtocol."""
    return dict(trial_id=trial_id, run=run, backend=backend, family=config.family, config=config.to_dict(),
                seed=seed, dataset=dataset, protocol=protocol.to_dict(), **extra)


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
                  final_top1=result.final_top1, best_top1=result.best_top1, score=result.score,
                  train_loss=result.train_loss,
                  epochs_done=result.epochs_done, wall_time=result.wall_time,
                  train_time=round(result.train_time, 3), images_per_s=result.images_per_s, error=result.error,
                  num_classes=result.num_classes or None)
    values.update(fields)
    return make_row(**values)


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows appended one JSON line each (rows.jsonl, trained.jsonl, confirm.jsonl); a line torn
    by a kill or a writer still at work is skipped, so its row is simply produced again."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows


def to_frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame(list(rows))
    if df.empty:
        return pd.DataFrame(columns=BASE_COLUMNS)
    extra = [c for c in df.columns if c not in BASE_COLUMNS]
    df = df.reindex(columns=BASE_COLUMNS[:5] + extra + BASE_COLUMNS[5:])  # rows from before a column existed
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


def best_row(df: pd.DataFrame, confirmed: pd.DataFrame | None = None) -> pd.Series | None:
    """The best complete trial: by the confirmed mean over seeds when there is one,
    else by its single top-1 (ties: the cheaper)."""
    done = df[df["status"] == "complete"].dropna(subset=["final_top1"])
    if done.empty:
        return None
    if confirmed is not None and not confirmed.empty:
        return done[done["trial_id"].astype(str) == confirmed["trial_id"].iloc[0]].iloc[0]
    return done.sort_values(["final_top1", "flops"], ascending=[False, True]).iloc[0]


def write_best(run_dir: Path, row: pd.Series, confirmed: pd.DataFrame | None = None) -> Path:
    """best.json holds the config under 'config' so `mfsearch.create_model(path)` rebuilds it;
    with confirmation, also the mean, std and per-seed top-1 it was chosen by."""
    payload = {"config": json.loads(row["config"]), "trial_id": str(row["trial_id"]),
               "final_top1": float(row["final_top1"]), "flops": int(row["flops"]), "params": int(row["params"]),
               "run": str(row["run"])}
    if confirmed is not None and not confirmed.empty:
        c = confirmed.iloc[0]
        payload["confirmed"] = {"top1_mean": round(float(c["top1_mean"]), 3),
                                "top1_std": round(float(c["top1_std"]), 3),
                                "seeds": list(c["seeds"]), "top1": list(c["top1"])}
    tmp = run_dir / "best.json.tmp"
    tmp.write_text(json.dumps(payload, indent=2))
    return tmp.replace(run_dir / "best.json")

