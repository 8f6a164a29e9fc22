"""One proposal -> one results row; the only place a search trains a proposal.

Both backends call `evaluate_params`: decode, bring the proposal into the run's band
[band*B, B] by scaling its width (`into_band`; no width lands it there -> an 'infeasible'
row, never trained; with band 0 only over-budget proposals are infeasible), its parameters
against the parameter budget when there is one (with a band, narrowed within it to fit; else
'infeasible' too), measured latency against the
latency budget when there is one (over -> 'infeasible' with its latency), then either the row of an
identical architecture this run already trained under the same protocol and seed
(a resumed or repeating sampler must not pay twice; the copy names its source in
`reused_from`) or proxy training.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from spaces import MobileFormerSpace, SpaceError, space_from_dict
from spaces.base import MIN_WIDTH, WIDTH_STEP

from ..clock import active_seconds
from ..common import format_madds, format_params, one_line
from ..data import InMemoryData, load_dataset
from ..flops import estimate_flops, estimate_params
from ..latency import LatencyRecord, measure_latency
from ..records.appended import append_row, read_rows
from ..records.rows import identity, make_row, row_from_proxy
from ..train import planned_epochs, train_proxy
from .settings import SearchSettings
from .weights import keep_trial

TRAINED = "trained.jsonl"   # complete and failed rows of this run, keyed by architecture: the reuse index


def make_space(settings: SearchSettings) -> MobileFormerSpace:
    if settings.space is None:
        return MobileFormerSpace()
    return space_from_dict(settings.space, source=settings.space_file or "space")


@lru_cache(maxsize=2)
def _load(dataset: str, root: str | None, download: bool, seed: int, test_split: float) -> InMemoryData:
    return load_dataset(dataset, root=root, download=download, seed=seed, test_split=test_split)


def load_data(settings: SearchSettings) -> InMemoryData:
    """The run's dataset, loaded once per process (workers each hold their own copy)."""
    return _load(settings.dataset, settings.data_root, settings.download, settings.seed, settings.test_split)


def trial_epochs(settings: SearchSettings) -> int:
    """Epochs each trial trains, the protocol's step floor included."""
    return planned_epochs(load_data(settings), settings.protocol, settings.seed)


def _trained_before(run_dir: Path, config: dict) -> dict | None:
    """A trained row of this run with the same architecture (protocol and seed are the run's)."""
    key = json.dumps(config, sort_keys=True)   # rows store their config in this same canonical form
    return next((row for row in read_rows(run_dir / TRAINED) if row["config"] == key), None)


def measured_latency(settings: SearchSettings, cfg) -> LatencyRecord | None:
    """The candidate's latency at batch 1 under the run's runtime and threads (cached by
    architecture and host, so a repeated proposal is never timed twice); None when off."""
    if not settings.uses_latency:
        return None
    return measure_latency(cfg, settings.latency_runtime, batch=1, threads=settings.latency_threads)


def latency_columns(rec: LatencyRecord | None) -> dict[str, float]:
    if rec is None:
        return {}
    return {"latency_ms": rec.median_ms, "latency_p10_ms": rec.p10_ms, "latency_p90_ms": rec.p90_ms}


def into_band(settings: SearchSettings, space, cfg):
    """(the config to train, None) or (the proposal, why it cannot be trained): a proposal
    outside [band*B, B] is width-fitted into the band (measured to waste far fewer proposals
    than rejecting it: most random draws of the space land below a narrow band), then held
    to the parameter budget when there is one."""
    cfg, error = _into_flop_band(settings, space, cfg)
    if error:
        return cfg, error
    return under_param_budget(settings, cfg)


def _into_flop_band(settings: SearchSettings, space, cfg):
    flops = estimate_flops(cfg)
    if settings.in_band(flops):
        return cfg, None
    if settings.band == 0:
        return cfg, f"{format_madds(flops)} MAdds over the {format_madds(settings.budget)} budget"
    try:
        return space.fit(cfg, settings.budget, settings.band), None
    except SpaceError as exc:
        return cfg, f"{format_madds(flops)} MAdds and no width brings it into [{settings.band:.0%}, 100%] of " \
                    f"{format_madds(settings.budget)}: {exc}"


def under_param_budget(settings: SearchSettings, cfg):
    """(cfg, None) when its parameters (1000-class head) fit the budget; with a band, a fitted
    candidate over it is narrowed to the widest width under it that stays in the FLOP band
    (parameters grow with width, so it may fit a little narrower); otherwise (cfg, why)."""
    if settings.param_budget is None:   # no count: it builds the model
        return cfg, None
    params = estimate_params(cfg)
    if settings.within_params(params):
        return cfg, None
    why = f"{format_params(params)} params over the {format_params(settings.param_budget)} parameter budget"
    if settings.band == 0:
        return cfg, why
    narrowed = _widest_under_params(settings, cfg)
    if narrowed is None:
        return cfg, f"{why}, and no width under it stays in [{settings.band:.0%}, 100%] of " \
                    f"{format_madds(settings.budget)} MAdds"
    return narrowed, None


def _widest_under_params(settings: SearchSettings, cfg):
    """The widest width (to WIDTH_STEP) under `cfg`'s whose parameters fit the budget, if its
    MAdds stay in the band; bisected, since each count builds a model (tens of ms)."""
    def at(width: float):
        return replace(cfg, width_mult=round(width, 4))

    lo, hi = MIN_WIDTH, cfg.width_mult
    if not settings.within_params(estimate_params(at(lo))):
        return None
    while hi - lo > WIDTH_STEP:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if settings.within_params(estimate_params(at(mid))) else (lo, mid)
    narrowed = at(lo)
    return narrowed if settings.in_band(estimate_flops(narrowed)) else None


def constraints(settings: SearchSettings, space, cfg) -> dict[str, float]:
    """Constraint values for the sampler (feasible when <= 0): how far the proposal (after
    width-fitting into the band) lies outside [band*B, B] MAdds, its parameters over the
    parameter budget when there is one, and the measured latency over the latency budget when
    there is one (only for otherwise feasible proposals: another is not worth timing)."""
    fitted, flop_error = _into_flop_band(settings, space, cfg)
    flops = estimate_flops(fitted)
    out = {"flops_over_budget": float(max(flops - settings.budget, settings.band * settings.budget - flops)
                                      if flop_error else min(0, flops - settings.budget))}
    cfg, error = (fitted, flop_error) if flop_error else under_param_budget(settings, fitted)
    if settings.param_budget is not None:
        out["params_over_budget"] = float(estimate_params(cfg) - settings.param_budget)
    if settings.latency_budget is not None:
        rec = measured_latency(settings, cfg) if error is None else None
        out["latency_over_budget_ms"] = rec.median_ms - settings.latency_budget if rec else 0.0
    return out


def evaluate_params(settings: SearchSettings, params: dict[str, Any], trial_id: int | str,
                    on_epoch: Callable[[int, float], None] | None = None,
                    log: Callable[[str], None] | None = None) -> dict[str, Any]:
    start = active_seconds()   # the row's wall time leaves out any time the study was paused
    elapsed = lambda: round(active_seconds() - start, 3)   # noqa: E731
    space = make_space(settings)
    params = space.normalize(params)
    cfg, error = into_band(settings, space, space.decode(params))
    flops = estimate_flops(cfg)
    common = dict(flops=flops, **identity(trial_id, settings.name, settings.backend, cfg, settings.seed,
                                          settings.dataset, settings.protocol, **params))
    if error:
        return make_row(status="infeasible", params=estimate_params(cfg), epochs_done=0,
                        wall_time=elapsed(), error=error, **common)
    common.update(latency_columns(measured_latency(settings, cfg)))
    if settings.latency_budget is not None and common["latency_ms"] > settings.latency_budget:
        return make_row(status="infeasible", params=estimate_params(cfg), epochs_done=0,
                        wall_time=elapsed(),
                        error=f"{common['latency_ms']:.2f} ms over the {settings.latency_budget:g} ms latency budget "
                              f"({settings.latency_runtime}, {settings.latency_threads} thread(s))", **common)
    earlier = _trained_before(settings.run_dir, cfg.to_dict())
    if earlier is not None:
        if log:
            log(f"same architecture as trial {earlier['trial_id']}: reusing its result, not training again")
        return {**earlier, "trial_id": trial_id, "reused_from": str(earlier["trial_id"]),
                "wall_time": elapsed()}
    try:
        result = train_proxy(cfg, load_data(settings), settings.protocol, seed=settings.seed,
                             device=settings.resolved_device(), threads=settings.worker_threads,
                             on_epoch=on_epoch, log=log, keep_weights=settings.save_weights != "none")
    except (RuntimeError, ValueError, MemoryError, torch.cuda.OutOfMemoryError) as exc:
        return make_row(status="failed", params=estimate_params(cfg), epochs_done=0,
                        wall_time=elapsed(),
                        error=one_line(f"{type(exc).__name__}: {exc}")[:500], **common)
    row = row_from_proxy(result, wall_time=elapsed(), **common)
    if row["status"] != "pruned":  # pruning depends on the other trials of the moment: not an answer
        append_row(settings.run_dir / TRAINED, row)
        keep_trial(settings, row, cfg, result, TRAINED)
    return row
