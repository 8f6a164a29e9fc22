"""Ray Tune backend: the same space and the same Optuna TPE sampler (through
`OptunaSearch`), ASHA early stopping for single-objective runs, one trial per
`--workers` slot. State lives in the run folder, so rerunning with the same name
restores the experiment and finishes what is left.

Ray is started quietly: no dashboard, no log forwarding, token auth disabled for
local runs (`RAY_AUTH_MODE=disabled`). A cluster user starts the head with
`ray start --head` (and workers with `ray start --address HEAD:6379`), sets the same
`RAY_AUTH_MODE` on every node, and passes `--address auto` or `--address HEAD:6379`;
every node needs this project installed and the dataset at the same `--data-root`.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..common import one_line
from ..flops import estimate_flops
from ..records.rows import identity, make_row
from .evaluate import constraints, evaluate_params, into_band, make_space, trial_epochs
from .optuna_backend import make_sampler, sampler_seed
from .settings import SearchSettings


def _trainable(settings_dict: dict):
    def trainable(config: dict[str, Any]) -> None:
        import warnings

        from ray import tune
        warnings.filterwarnings("ignore")
        settings = SearchSettings.from_dict(settings_dict)
        trial_id = tune.get_context().get_trial_id()
        last = trial_epochs(settings) - 1

        def on_epoch(epoch: int, top1: float) -> None:
            if epoch < last:  # the last epoch is reported with the finished row below
                tune.report({"top1": top1, "flops": flops, "epoch": epoch + 1, "row": json.dumps(
                    {"status": "pruned", "epochs_done": epoch + 1, "final_top1": top1})})

        space = make_space(settings)
        flops = estimate_flops(into_band(settings, space, space.decode(space.normalize(config)))[0])
        row = evaluate_params(settings, dict(config), trial_id, on_epoch)
        tune.report({"top1": row["final_top1"] or 0.0, "flops": row["flops"], "epoch": row["epochs_done"],
                     "latency": row.get("latency_ms") or 0.0, "params": row["params"],
                     "row": json.dumps(row, default=str)})
    return trainable


class DefineByRun:
    """Optuna define-by-run space for OptunaSearch; a class so Ray can pickle it into checkpoints."""

    def __init__(self, settings_dict: dict):
        self.settings_dict = settings_dict

    def __call__(self, trial) -> None:
        settings = SearchSettings.from_dict(self.settings_dict)
        space = make_space(settings)
        params = space.suggest(trial)
        for key, value in constraints(settings, space, space.decode(params)).items():
            trial.set_constraint(key, value)


def _start_ray(settings: SearchSettings) -> None:
    import logging
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # with verbose=0: no tables on stdout
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    import ray
    if ray.is_initialized():
        return
    kwargs: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
                                  configure_logging=True)
    if settings.address:
        ray.init(address=settings.address, **kwargs)
    else:
        ray.init(num_cpus=settings.workers * settings.worker_threads, **kwargs)


def _row_from_result(result, settings: SearchSettings, space) -> dict | None:
    """The finished row a trial reported, or a row rebuilt from what it reported before it stopped."""
    metrics = result.metrics or {}
    config = result.config or {}
    if not config:
        return None
    if "row" in metrics:
        row = json.loads(metrics["row"])
        if "config" in row:
            return row
    params = space.normalize(config)
    cfg = space.decode(params)
    status = "pruned" if metrics.get("epoch") else "failed"
    error = None if status == "pruned" else one_line(str(result.error))[:500] if result.error else "no result"
    history = result.metrics_dataframe
    top1 = [float(v) for v in history["top1"]] if history is not None and "top1" in history else []
    return make_row(status=status, flops=estimate_flops(cfg), top1_per_epoch=top1,
                    final_top1=top1[-1] if top1 else None, best_top1=max(top1) if top1 else None,
                    epochs_done=len(top1), error=error,
                    **identity(metrics.get("trial_id", ""), settings.name, "ray", cfg, settings.seed,
                               settings.dataset, settings.protocol, **params))


def run_ray(settings: SearchSettings, deadline: float | None, progress: Callable[[list[dict]], None]) -> list[dict]:
    import time

    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search.optuna import OptunaSearch

    _start_ray(settings)
    space = make_space(settings)
    if settings.objective == "accuracy":
        metric, mode = "top1", "max"
        scheduler = ASHAScheduler(time_attr="training_iteration", metric=metric, mode=mode,
                                  max_t=trial_epochs(settings), grace_period=1, reduction_factor=2)
    else:
        metric, mode = ["top1", settings.cost], ["max", "min"]   # each cost is reported under its own name
        scheduler = FIFOScheduler()
    searcher = OptunaSearch(space=DefineByRun(settings.to_dict()), metric=metric, mode=mode,
                            sampler=make_sampler(settings),
                            seed=sampler_seed(settings))
    device = settings.resolved_device()
    # trials run in their own working directories: give them the run folder as an absolute path
    worker_settings = {**settings.to_dict(), "out": str(Path(settings.out).resolve())}
    trainable = tune.with_resources(_trainable(worker_settings),
                                    {"cpu": settings.worker_threads, "gpu": 1 if device.startswith("cuda") else 0})
    storage = str((settings.run_dir / "ray").resolve())
    path = Path(storage) / "tune"
    rows_seen: list[dict] = []

    class Progress(tune.Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info):
            # what the Optuna backend's trainer logs per epoch; Ray's workers do not forward their output
            if result.get("epoch") and "top1" in result:
                print(f"  trial {trial.trial_id}: epoch {result['epoch']}/{settings.protocol.epochs}: "
                      f"top-1 {result['top1']:.2f}%", flush=True)

        def on_trial_complete(self, iteration, trials, trial, **info):
            row = json.loads(trial.last_result.get("row", "{}")) if trial.last_result else {}
            rows_seen.append(row if "config" in row else {"status": "pruned", **row})
            progress(rows_seen)

    time_budget = None if deadline is None else max(1.0, deadline - time.time())
    tune_config = tune.TuneConfig(search_alg=searcher, scheduler=scheduler, num_samples=settings.trials,
                                  max_concurrent_trials=settings.workers, time_budget_s=time_budget)
    run_config = tune.RunConfig(name="tune", storage_path=storage, verbose=0, callbacks=[Progress()],
                                log_to_file=True)
    if tune.Tuner.can_restore(str(path)):
        print("resume: restoring the Ray Tune experiment in", path, flush=True)
        tuner = tune.Tuner.restore(str(path), trainable=trainable, resume_unfinished=True, restart_errored=True)
    else:
        tuner = tune.Tuner(trainable, tune_config=tune_config, run_config=run_config)
    grid = tuner.fit()
    rows = [r for r in (_row_from_result(res, settings, space) for res in grid) if r is not None]
    return rows
