"""The finalists' rung: retrain the search's best k complete trials and rank them by the
mean. A winner chosen on one seed of a short proxy is the most common false result in NAS.

With `final_length` 1 the finalists are retrained under the trial protocol with extra
seeds and the mean includes the search's own run; with a longer rung they are trained
`confirm_seeds` times under `settings.final_protocol()` (more images) and only those runs
count. best.json reports the winner's mean, and the summary says whether it is resolved
from the runner-up (a Welch 95% interval of the difference that excludes 0).

Rows go to `confirm.jsonl` as they finish (a rerun resumes) and to confirm.parquet/.csv.
"""
from __future__ import annotations

import json
from collections.abc import Callable

import pandas as pd
from scipy import stats

from ..models import config_from_dict
from ..records.appended import append_rows, keyed_rows
from ..records.rows import identity, row_from_proxy, to_frame
from ..records.tables import write_table
from ..train import ProxyProtocol, train_proxy
from .evaluate import load_data
from .settings import SearchSettings

ROWS = "confirm.jsonl"


def candidates(df: pd.DataFrame, k: int) -> pd.DataFrame:
    """The best k complete trials, one per architecture (a reused row repeats its source)."""
    done = df[df["status"] == "complete"].dropna(subset=["final_top1"])
    done = done.sort_values(["final_top1", "flops"], ascending=[False, True])
    return done.drop_duplicates(subset=["config"]).head(k)


def extra_seeds(settings: SearchSettings) -> list[int]:
    """Seeds of the finalists' rung: new ones beside the trial's own under the trial protocol,
    from the trial's own seed on under a longer one (a different training either way)."""
    first = settings.seed + (1 if settings.final_length == 1 else 0)
    return [first + i for i in range(settings.confirm_seeds)]


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
    protocol = settings.final_protocol()
    # rows of another rung length (an earlier session's --final-length) are not this rung's
    done = {k: r for k, r in keyed_rows(path, lambda r: (r["confirms"], r["seed"])).items()
            if ProxyProtocol.of_row(r) == protocol}
    jobs = [(row, s) for _, row in top.iterrows() for s in extra_seeds(settings)]
    log(f"finalists: the best {len(top)} trial(s), {settings.confirm_seeds} training(s) each on "
        f"{protocol.epochs} epoch(s) x {protocol.data_fraction:.0%} of the data "
        f"({settings.final_length:g}x a trial's images): "
        f"{sum((str(r['trial_id']), s) not in done for r, s in jobs)} trainings")
    with append_rows(path) as write:
        for i, (row, seed) in enumerate(jobs, 1):
            key = (str(row["trial_id"]), seed)
            if key in done:
                continue
            cfg = config_from_dict(json.loads(row["config"]))
            r = train_proxy(cfg, load_data(settings), protocol, seed=seed,
                            device=settings.resolved_device(), threads=settings.worker_threads * settings.workers,
                            log=lambda line, k=key: log(f"  confirm trial {k[0]} seed {k[1]}: {line}"))
            out = row_from_proxy(r, **identity(f"{key[0]}/seed{seed}", settings.name, "confirm", cfg, seed,
                                               settings.dataset, protocol, confirms=key[0]))
            write(out)
            done[key] = out
            log(f"[confirm {i}/{len(jobs)}] trial {key[0]} seed {seed}: {r.status}, top1 {r.final_top1}")
    rows = [done[(str(r["trial_id"]), s)] for r, s in jobs if (str(r["trial_id"]), s) in done]
    write_table(to_frame(rows), settings.run_dir, "confirm")
    return summarize_seeds(top, rows, include_trial=settings.final_length == 1)


def summarize_seeds(top: pd.DataFrame, rows: list[dict], include_trial: bool = True) -> pd.DataFrame:
    """One line per finalist (best mean first): its rung's top-1s (with the search's own
    run when `include_trial`, i.e. when the rung is the trial protocol), mean and std."""
    out = []
    for _, t in top.iterrows():
        tid = str(t["trial_id"])
        # complete trainings only: a diverged seed's early top-1 is not a result
        extra = sorted((r["seed"], r["final_top1"]) for r in rows if r["confirms"] == tid
                       and r["status"] == "complete")
        own = [(int(t["seed"]), float(t["final_top1"]))] if include_trial else []
        values = [v for _, v in own] + [float(v) for _, v in extra]
        if not values:
            continue
        s = pd.Series(values)
        out.append({"trial_id": tid, "top1_mean": float(s.mean()), "top1_std": float(s.std(ddof=1)) if len(s) > 1
                    else 0.0, "seeds": [k for k, _ in own] + [int(k) for k, _ in extra], "top1": values,
                    "flops": int(t["flops"]), "failed": sum(1 for r in rows if r["confirms"] == tid
                                                            and r["status"] != "complete")})
    if not out:
        return pd.DataFrame(columns=["trial_id", "top1_mean", "top1_std", "seeds", "top1", "flops", "failed"])
    table = pd.DataFrame(out)
    return table.sort_values(["top1_mean", "flops"], ascending=[False, True]).reset_index(drop=True)


def resolution(confirmed: pd.DataFrame) -> dict | None:
    """The winner's lead over the runner-up with a Welch 95% interval; `resolved` when the
    interval excludes 0. None with fewer than two finalists; no interval with < 2 runs each."""
    if confirmed is None or len(confirmed) < 2:
        return None
    a, b = confirmed["top1"].iloc[0], confirmed["top1"].iloc[1]
    out = {"lead": float(pd.Series(a).mean() - pd.Series(b).mean()), "low": None, "high": None, "resolved": False}
    if len(a) > 1 and len(b) > 1 and (pd.Series(a).std() > 0 or pd.Series(b).std() > 0):
        ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
        out.update(low=float(ci.low), high=float(ci.high), resolved=bool(ci.low > 0 or ci.high < 0))
    return out

