"""Orchestration of one search run: checks, baselines, backend, tables, summary."""
from __future__ import annotations

import datetime as dt
import json
import tempfile
import time
from pathlib import Path

import pandas as pd

from ..clock import active_seconds
from ..common import UsageError, format_madds, format_params
from ..data import BUILT_IN_AGREEMENT
from ..records.appended import drop_torn_tail
from ..records.rows import to_frame
from ..records.runjson import RUN_JSON, environment, read_run_json, write_run_json
from ..records.tables import best_row, write_best, write_table
from .baselines import run_baselines
from .confirm import confirm_top, resolution
from .evaluate import TRAINED, load_data, make_space
from .optuna_backend import make_storage, run_optuna
from .ray_backend import run_ray
from .settings import SearchSettings
from .weights import finish as finish_weights


def check_output(settings: SearchSettings) -> bool:
    """Refuse unusable output folders and incompatible resumes before anything is written.

    Returns True when an earlier run of the same name is resumed.
    """
    out = Path(settings.out)
    try:  # a real write: os.access says yes to root even where writes fail
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise UsageError(f"cannot write to output folder {out} ({exc.strerror}); pass a writable --out") from None
    if not settings.run_dir.exists():
        return False
    if not (settings.run_dir / RUN_JSON).is_file():
        if any(settings.run_dir.iterdir()):
            raise UsageError(f"{settings.run_dir} exists and is not a search run; pass another --name or --out")
        return False
    _, diff = earlier_run(settings, "pass another --name to start a new run")
    if diff:
        raise UsageError(f"run '{settings.name}' exists with different {', '.join(diff)}; rerun with the same "
                         "settings to resume it, or pass another --name")
    return True


def earlier_run(settings: SearchSettings, remedy: str) -> tuple[dict, list[str]]:
    """The run.json already in the run folder, and the identity settings it differs in."""
    try:
        meta = read_run_json(settings.run_dir) or {}
        earlier = SearchSettings.from_dict(meta["settings"]).identity()
    except (KeyError, TypeError, ValueError, UsageError):
        raise UsageError(f"{settings.run_dir / 'run.json'} is unreadable; {remedy}") from None
    ours = settings.identity()
    # either side may lack a setting left out while unset (UNSET_OUT_OF_IDENTITY)
    return meta, [k for k in dict.fromkeys([*ours, *earlier]) if ours.get(k) != earlier.get(k)]


def check_budget(settings: SearchSettings):
    space = make_space(settings)
    lo, _ = space.flops_range()
    if settings.budget < lo:
        raise UsageError(f"budget {format_madds(settings.budget)} is below the smallest model this space holds "
                         f"({format_madds(lo)} MAdds); raise --budget or widen the space with --space")
    return space


class Progress:
    """Prints one line per finished trial: count, best so far, ETA."""

    def __init__(self, settings: SearchSettings):
        self.settings, self.start, self.done_before = settings, active_seconds(), 0

    def __call__(self, rows: list[dict]) -> None:
        done = len(rows)
        new = max(0, done - self.done_before)
        elapsed = active_seconds() - self.start   # a paused search's ETA leaves the pause out
        eta = ""
        if new and done < self.settings.trials:
            eta = f", ETA {dt.timedelta(seconds=round(elapsed / new * (self.settings.trials - done)))}"
        best = [r for r in rows if r.get("status") == "complete" and r.get("final_top1") is not None]
        last = rows[-1] if rows else {}
        best_txt = "no complete trial yet"
        if best:
            b = max(best, key=lambda r: (r["final_top1"], -r["flops"]))  # ties: the cheaper, as in best.json
            best_txt = f"best top1 {b['final_top1']:.2f}% at {format_madds(b['flops'])}"
        last_txt = f"last: {last.get('status')}" + (f" {last['final_top1']:.2f}%" if last.get("final_top1")
                                                     is not None else "")
        print(f"[{done}/{self.settings.trials}] {best_txt}; {last_txt}; elapsed "
              f"{dt.timedelta(seconds=round(elapsed))}{eta}", flush=True)


def _space_label(space) -> str:
    return "default Mobile-Former space" if space.name == "mobile_former" else f"{space.name} space"


def describe(settings: SearchSettings, space) -> str:
    p = settings.protocol
    data = settings.dataset + (f" at {settings.data_root}" if settings.data_root else " (built in)"
                               if settings.dataset in BUILT_IN_AGREEMENT else "")
    if settings.dataset in BUILT_IN_AGREEMENT and not settings.data_root:   # what its ranking is worth
        data += f"; its ranking: {BUILT_IN_AGREEMENT[settings.dataset]}"
    band = (f"candidates width-fitted into [{settings.band:.0%}, 100%] of it" if settings.band
            else "any candidate under it")
    params = f", at most {format_params(settings.param_budget)} parameters (1000 classes)" \
        if settings.param_budget is not None else ""
    objective = settings.objective + (f" (top-1 vs {settings.cost})" if settings.objective == "pareto" else "")
    final = settings.final_protocol()
    return (f"search '{settings.name}': budget {format_madds(settings.budget)} MAdds (each model at its own "
            f"resolution, 1000 classes; {band}){params}, backend {settings.backend}, objective {objective}, "
            f"{settings.trials} trials, {settings.workers} worker(s) x {settings.worker_threads} thread(s)\n"
            f"  dataset {data}\n"
            f"  space {settings.space_file or _space_label(space)} ({len(space.dimensions)} dimensions)\n"
            f"  proxy: {p.epochs} epochs on {p.data_fraction:.0%} of the training set, batch {p.batch_size}, "
            f"AdamW lr {p.lr} wd {p.weight_decay}, a 224-px design trains at "
            f"{f'{p.base_resolution} px' if p.base_resolution else 'the stored size'} (others scale, at least "
            f"{p.min_resolution} px), augment {p.augment}, "
            f"regularization {p.regularization}, at least {p.min_steps} optimiser steps, seed {settings.seed}, "
            f"device {settings.resolved_device()}\n"
            + (f"  latency: {settings.latency_runtime}, batch 1, {settings.latency_threads} thread(s), measured "
               "before training and cached" + (f"; budget {settings.latency_budget:g} ms" if settings.latency_budget
                                               else "") + (f"; pareto cost {settings.cost}" if settings.objective ==
                                                            "pareto" else "") + "\n" if settings.uses_latency else "")
            + (f"  then the best {settings.confirm_top} trial(s) retrained {settings.confirm_seeds} time(s) each "
               f"on {final.epochs} epoch(s) x {final.data_fraction:.0%} of the data ({settings.final_length:g}x a "
               "trial's images); best.json is chosen by the mean\n" if settings.confirm_top else "") +
            f"  results: {settings.run_dir}")


def run_search(settings: SearchSettings, deadline: float | None = None) -> dict:
    resumed = check_output(settings)
    space = check_budget(settings)
    settings.resolved_device()
    print(describe(settings, space), flush=True)
    load_data(settings)
    if settings.storage:  # reach the database before anything is written
        make_storage(settings)
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now().isoformat(timespec="seconds")
    env = environment()
    write_run_json(settings.run_dir, {"settings": settings.to_dict(), "status": "running", "started": started,
                                      "resumed": resumed, **env})
    drop_torn_tail(settings.run_dir / TRAINED)   # before any worker appends to the reuse index
    baselines = run_baselines(settings) if settings.baselines else []
    if settings.baselines:
        write_table(to_frame(baselines), settings.run_dir, "baselines")
    progress = Progress(settings)
    run_backend = run_optuna if settings.backend == "optuna" else run_ray
    rows = run_backend(settings, deadline, progress)
    df = to_frame(rows)
    write_table(df, settings.run_dir, "trials")
    late = deadline is not None and time.time() >= deadline
    confirmed = None if late else confirm_top(settings, df)   # --timeout stops confirmation too
    best = best_row(df, confirmed)
    if best is not None:
        write_best(settings.run_dir, best, confirmed)
    weights = finish_weights(settings, best)
    write_run_json(settings.run_dir, {"settings": settings.to_dict(), "status": "finished", "started": started,
                                      "finished": dt.datetime.now().isoformat(timespec="seconds"),
                                      "resumed": resumed, **env})
    summary = summarize(settings, df, to_frame(baselines), confirmed, weights is not None,
                        chance=100 / load_data(settings).num_classes)
    print(summary["text"], flush=True)
    return summary


# a run whose every trial and baseline ends within this many points of chance learnt nothing
# the ranking could rest on: its summary says so instead of naming a winner
NEAR_CHANCE_POINTS = 5.0


def near_chance(df: pd.DataFrame, base: pd.DataFrame, chance: float) -> float | None:
    """The best top-1 of trials and baselines when it lies within NEAR_CHANCE_POINTS of chance."""
    tops = [v for frame in (df, base) if not frame.empty and "final_top1" in frame
            for v in frame.loc[frame["status"] == "complete", "final_top1"].dropna()]
    if not tops or max(tops) > chance + NEAR_CHANCE_POINTS:
        return None
    return float(max(tops))


def summarize(settings: SearchSettings, df: pd.DataFrame, base: pd.DataFrame,
              confirmed: pd.DataFrame | None = None, weights: bool = False, chance: float | None = None) -> dict:
    counts = df["status"].value_counts().to_dict() if not df.empty else {}
    best = best_row(df, confirmed)
    bbest = best_row(base) if not base.empty else None
    lines = [f"\n{len(df)} trials: " + ", ".join(f"{counts.get(s, 0)} {s}" for s in
                                                    ("complete", "pruned", "infeasible", "failed"))]
    lines.append(f"band: {f'[{settings.band:.0%}, 100%]' if settings.band else 'off'} of "
                 f"{format_madds(settings.budget)}" + (f"; the winner fills {best['flops'] / settings.budget:.0%} "
                                                       "of the budget" if best is not None else ""))
    if settings.param_budget is not None:
        lines.append(f"parameter budget: {format_params(settings.param_budget)} (1000 classes)"
                     + (f"; the winner has {format_params(best['params'])}" if best is not None else ""))
    stuck = near_chance(df, base, chance) if chance is not None else None
    if stuck is not None:
        lines.append(f"WARNING: every trial and baseline ended within {NEAR_CHANCE_POINTS:g} points of chance "
                     f"(best {stuck:.1f}%, chance {chance:.1f}%): the proxy learnt nothing to rank by on this data, "
                     "so the 'best' below means nothing. Train longer (--epochs, --min-steps, --data-fraction) or "
                     "use more images.")
    lines.append(f"{'':<28}{'MAdds':>10}{'params':>10}{'proxy top1':>12}")
    if best is not None:
        cfg = json.loads(best["config"])
        lines.append(f"{'best Mobile-Former':<28}{format_madds(best['flops']):>10}"
                     f"{best['params'] / 1e6:>9.2f}M{best['final_top1']:>11.2f}%")
        lines.append(f"  tokens {cfg['tokens']} x {cfg['token_dim']}, width {cfg['width_mult']}, "
                     f"depth {sum(b[3] for b in cfg['blocks'])}, resolution {cfg['resolution']}")
        if confirmed is not None and not confirmed.empty:
            final = settings.final_protocol()
            rung = "the trial protocol" if settings.final_length == 1 else \
                f"the final rung ({final.epochs} epoch(s) x {final.data_fraction:.0%}, {settings.final_length:g}x " \
                "a trial's images)"
            lines.append(f"  chosen at {rung} over seeds {', '.join(map(str, confirmed['seeds'].iloc[0]))}: "
                         f"{confirmed['top1_mean'].iloc[0]:.2f} ± {confirmed['top1_std'].iloc[0]:.2f}% "
                         f"(the best mean among the top {len(confirmed)})")
            for c in confirmed.itertuples():
                lines.append(f"    trial {c.trial_id}: {c.top1_mean:.2f} ± {c.top1_std:.2f}% "
                             f"({', '.join(f'{v:.2f}' for v in c.top1)})")
            lead = resolution(confirmed)
            if lead is not None:
                interval = f" (95% interval {lead['low']:+.2f} to {lead['high']:+.2f})" if lead["low"] is not None \
                    else " (one run each: no interval)"
                lines.append(f"  lead over the runner-up: {lead['lead']:+.2f} points{interval}: "
                             + ("resolved" if lead["resolved"] else "not resolved from the runner-up"))
    else:
        lines.append("no trial completed")
    if bbest is not None:
        lines.append(f"{'best MobileNetV3 (' + bbest['trial_id'].replace('mobilenet_v3_', '') + ')':<28}"
                     f"{format_madds(bbest['flops']):>10}{bbest['params'] / 1e6:>9.2f}M{bbest['final_top1']:>11.2f}%")
    elif settings.baselines:
        lines.append("no MobileNetV3 baseline fits the budget")
    files = "trials.parquet, trials.csv, " + ("baselines.parquet, " if settings.baselines else "") + \
        ("best.json, " if best is not None else "") + ("best.pt, " if weights else "") + \
        ("weights/, " if weights and settings.save_weights == "all" else "") + \
        ("confirm.parquet, " if confirmed is not None else "") + \
        "run.json"
    lines.append(f"results: {settings.run_dir}/ ({files}); next: python analyze.py {settings.run_dir}")
    return {"text": "\n".join(lines), "best": None if best is None else best.to_dict(), "band": settings.band,
            "param_budget": settings.param_budget,
            "near_chance": stuck is not None,
            "lead": resolution(confirmed) if confirmed is not None and not confirmed.empty else None,
            "baseline": None if bbest is None else bbest.to_dict(), "counts": counts}
