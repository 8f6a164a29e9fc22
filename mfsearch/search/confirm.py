"""Top-k confirmation: retrain the search's best k complete trials with extra seeds and
rank them by the mean. A winner chosen on one seed of a short proxy is the most common
false result in NAS; the mean over seeds is what best.json reports.

Rows go to `confirm.jsonl` as they finish (a rerun resumes) and to confirm.parquet/.csv.
"""
from __future__ import annotations

import json
from collections.abc import Callable

import pandas as pd

from ..models import config_from_dict
from ..records.appended import append_rows, keyed_rows
from ..records.rows import identity, row_from_proxy, to_frame
from ..records.tables import write_table
from ..train import train_proxy
from .evaluate import load_data
from .settings import SearchSettings

ROWS = "confirm.jsonl"


def candidates(df: pd.DataFrame, k: int) -> pd.DataFrame:
    """The best k complete trials, one per architecture (a reused row repeats its source)."""
    done = df[df["status"] == "complete"].dropna(subset=["final_top1"])
    done = done.sort_values(["final_top1", "flops"], ascending=[False, True])
    return done.drop_duplicates(subset=["config"]).head(k)


def extra_seeds(settings: SearchSettings) -> list[int]:
    return [settings.seed + i for i in range(1, settings.confirm_seeds + 1)]


def confirm_top(settings: SearchSettings, df: pd.DataFrame,
                log: Callable[[str], None] = print) -> pd.DataFrame | None:
    """Mean and std of final top-1 over the search seed and the extra seeds, per confirmed
    trial (sorted best first), or None when confirmation is off or nothing completed."""
    if settings.confirm_top == 0 or df.empty:
        return None
    top = candidates(df, settings.confirm_top)
    if top.empty:
        return None
    path = settings.run_dir / ROWS
    done = keyed_rows(path, lambda r: (r["confirms"], r["seed"]))
    jobs = [(row, s) for _, row in top.iterrows() for s in extra_seeds(settings)]
    log(f"confirming the best {len(top)} trial(s) with {settings.confirm_seeds} more seed(s) each: "
        f"{sum((str(r['trial_id']), s) not in done for r, s in jobs)} trainings")
    with append_rows(path) as write:
        for i, (row, seed) in enumerate(jobs, 1):
            key = (str(row["trial_id"]), seed)
            if key in done:
                continue
            cfg = config_from_dict(json.loads(row["config"]))
            r = train_proxy(cfg, load_data(settings), settings.protocol, seed=seed,
                            device=settings.resolved_device(), threads=settings.worker_threads * settings.workers,
                            log=lambda line, k=key: log(f"  confirm trial {k[0]} seed {k[1]}: {line}"))
            out = row_from_proxy(r, **identity(f"{key[0]}/seed{seed}", settings.name, "confirm", cfg, seed,
                                               settings.dataset, settings.protocol, confirms=key[0]))
            write(out)
            done[key] = out
            log(f"[confirm {i}/{len(jobs)}] trial {key[0]} seed {seed}: {r.status}, top1 {r.final_top1}")
    rows = [done[(str(r["trial_id"]), s)] for r, s in jobs if (str(r["trial_id"]), s) in done]
    write_table(to_frame(rows), settings.run_dir, "confirm")
    return summarize_seeds(top, rows)


def summarize_seeds(top: pd.DataFrame, rows: list[dict]) -> pd.DataFrame:
    """One line per confirmed trial: the search's top-1 and the extra seeds', mean, std."""
    out = []
    for _, t in top.iterrows():
        tid = str(t["trial_id"])
        # complete trainings only: a diverged seed's early top-1 is not a result
        extra = [(r["seed"], r["final_top1"]) for r in rows if r["confirms"] == tid and r["status"] == "complete"]
        values = [float(t["final_top1"])] + [float(v) for _, v in sorted(extra)]
        s = pd.Series(values)
        out.append({"trial_id": tid, "top1_mean": float(s.mean()), "top1_std": float(s.std(ddof=1)) if len(s) > 1
                    else 0.0, "seeds": [int(t["seed"])] + [int(k) for k, _ in sorted(extra)], "top1": values,
                    "flops": int(t["flops"]), "failed": sum(1 for r in rows if r["confirms"] == tid
                                                            and r["status"] != "complete")})
    table = pd.DataFrame(out)
    return table.sort_values(["top1_mean", "flops"], ascending=[False, True]).reset_index(drop=True)

