"""Tables and best.json: parquet and CSV side by side, and the best trial's config, each
written atomically (a reader never sees a torn file)."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .atomic import replace_atomically, write_text_atomically


def write_table(df: pd.DataFrame, run_dir: Path, stem: str) -> None:
    """Parquet and CSV side by side, each written to a temp file and renamed (no torn files)."""
    replace_atomically(run_dir / f"{stem}.parquet", lambda tmp: df.to_parquet(tmp, index=False))
    replace_atomically(run_dir / f"{stem}.csv", lambda tmp: df.to_csv(tmp, index=False))


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
    return write_text_atomically(run_dir / "best.json", json.dumps(payload, indent=2))

