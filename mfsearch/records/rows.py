"""The results schema, in one place: what search and studies write and analysis reads.

One row per trial (and per baseline) with: trial_id, run, backend, family, status
(complete / pruned / infeasible / failed), every searched dimension as its own column,
`config` (JSON that `mfsearch.create_model` rebuilds), flops (multiply-adds at the
architecture's resolution, 1000 classes), params, proxy_resolution, top1_per_epoch
(JSON list, %), final_top1, best_top1, score (what ranks the row: final_top1 for a
trained protocol, the zero-cost score for a 0-epoch one), train_loss (JSON list), epochs_done,
wall_time and train_time (seconds, time the process was stopped left out: mfsearch.clock),
images_per_s (training), threads (torch's, while training), device (what it trained on; rows
from before it existed leave it empty), error, seed, dataset, protocol (JSON).

A detection study's row (`row_from_detection`) keeps its own measured columns (AP, AP50,
AP75, MAdds and parameters per detector part) and its config and protocol as JSON objects,
as its rows.jsonl has always held them.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pandas as pd

STATUSES = ("complete", "pruned", "infeasible", "failed")
BASE_COLUMNS = ["trial_id", "run", "backend", "family", "status", "config", "flops", "params",
                "proxy_resolution", "top1_per_epoch", "final_top1", "best_top1", "score", "train_loss", "epochs_done",
                "wall_time", "train_time", "images_per_s", "threads", "device", "error", "seed", "dataset",
                "num_classes", "protocol"]


def device_kind(device: Any) -> str:
    """The kind of device a row trained on ('cpu', 'cuda'); a row that records none is from
    before rows did, when everything trained on the CPU."""
    return str(device).split(":")[0] if isinstance(device, str) and device else "cpu"


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
                  num_classes=result.num_classes or None, threads=result.threads or None,
                  device=result.device or None)
    values.update(fields)
    return make_row(**values)


def to_frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame(list(rows))
    if df.empty:
        return pd.DataFrame(columns=BASE_COLUMNS)
    extra = [c for c in df.columns if c not in BASE_COLUMNS]
    df = df.reindex(columns=BASE_COLUMNS[:5] + extra + BASE_COLUMNS[5:])  # rows from before a column existed
    for col in ("flops", "params", "proxy_resolution", "epochs_done", "seed", "threads"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("Int64")
    for col in ("final_top1", "best_top1", "score", "wall_time", "train_time", "images_per_s"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    return df


def row_from_detection(result: Any, **fields: Any) -> dict[str, Any]:
    """A detection study's row from a `DetectionResult`; `fields` are its identity columns."""
    return {**fields, "status": result.status, "error": result.error, "AP": result.AP, "AP50": result.AP50,
            "AP75": result.AP75, "first_loss": result.first_loss, "train_loss": result.train_loss,
            **{f"{k}_flops": v for k, v in result.flops.items()},
            **{f"{k}_params": v for k, v in result.params.items()},
            "train_time": round(result.train_time, 2), "wall_time": result.wall_time,
            "images_per_s": result.images_per_s}
