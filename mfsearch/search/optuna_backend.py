"""Optuna backend: ask/tell workers sharing one storage.

Local runs keep a journal file in the run folder (safe for concurrent writers from
several processes, unlike SQLite); `--storage postgresql://...` shares a study across
machines. Rerunning with the same name loads the study, marks trials a killed run
left RUNNING as failed-interrupted, re-queues their parameters, and continues until
the requested number of trials has finished. (With a shared database a RUNNING
trial may belong to a live worker on another machine, so nothing is re-queued there.)
"""
from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..common import UsageError, exit_with_parent, one_line
from ..train import TrialPruned
from .evaluate import constraints, evaluate_params, make_space, trial_epochs
from .settings import COST_COLUMNS, SearchSettings


def _optuna():
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def make_storage(settings: SearchSettings):
    optuna = _optuna()
    if settings.storage:
        try:
            return optuna.storages.RDBStorage(settings.storage)
        except Exception as exc:  # connection refused, unknown driver, bad URL ...
            raise UsageError(f"--storage {settings.storage}: {one_line(exc)[:200]}") from None
    from optuna.storages.journal import JournalFileBackend
    backend = JournalFileBackend(str((settings.run_dir / "study.journal").resolve()))
    return optuna.storages.JournalStorage(backend)


def sampler_seed(settings: SearchSettings, history: int = 0) -> int:
    """The sampler's seed mixes in the budget: searches at two large budgets, where nearly
    every proposal fits both, would otherwise propose (and train) the same architectures.
    A resumed study also mixes in how many trials it holds, so its sampler does not
    replay the first session's proposals. Training and baselines keep --seed itself."""
    entropy = [settings.seed, int(settings.budget)] + ([history] if history else [])
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def make_sampler(settings: SearchSettings, history: int = 0):
    optuna = _optuna()
    if settings.sampler == "random":
        return optuna.samplers.RandomSampler(seed=sampler_seed(settings, history))
    startup = max(3, min(10, settings.trials // 3))
    return optuna.samplers.TPESampler(seed=sampler_seed(settings, history), n_startup_trials=startup,
                                      constant_liar=settings.workers > 1, multivariate=True)


def open_study(settings: SearchSettings):
    optuna = _optuna()
    directions = ["maximize"] if settings.objective == "accuracy" else ["maximize", "minimize"]
    pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1) \
        if settings.objective == "accuracy" else optuna.pruners.NopPruner()
    study = optuna.create_study(study_name=settings.name, storage=make_storage(settings), load_if_exists=True,
                                directions=directions, sampler=make_sampler(settings), pruner=pruner)
    history = len(study.get_trials(deepcopy=False))
    if history:
        study.sampler = make_sampler(settings, history)
    return study


def finished(study) -> list:
    """Trials that count towards --trials (an interrupted trial is re-run, not counted)."""
    from optuna.trial import TrialState
    return [t for t in study.get_trials(deepcopy=False)
            if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
            or (t.state == TrialState.FAIL and not t.user_attrs.get("interrupted"))]


def recover_interrupted(study) -> int:
    """Fail trials a killed run left RUNNING and queue their parameters again."""
    from optuna.trial import TrialState
    stale = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.RUNNING]
    for t in stale:
        study._storage.set_trial_user_attr(t._trial_id, "interrupted", True)
        study.tell(t.number, state=TrialState.FAIL)
        study.enqueue_trial(t.params, skip_if_exists=False)
    return len(stale)


def _objective_values(settings: SearchSettings, row: dict) -> list[float]:
    top1 = row["final_top1"] if row["final_top1"] is not None else 0.0
    if settings.objective == "accuracy":
        return [top1]
    cost = row.get(COST_COLUMNS[settings.cost])
    # an infeasible proposal (over the MAdds budget) is never exported or timed: it has no latency,
    # and the worst cost keeps it off the front (its constraint already marks it infeasible)
    return [top1, float(cost) if cost is not None else float("inf")]


def run_trial(study, settings: SearchSettings) -> dict[str, Any]:
    from optuna.trial import TrialState
    space = make_space(settings)
    trial = study.ask()
    params = space.suggest(trial)
    for key, value in constraints(settings, space, space.decode(params)).items():
        trial.set_constraint(key, value)

    last = trial_epochs(settings) - 1

    def on_epoch(epoch: int, top1: float) -> None:
        if settings.objective == "accuracy":
            trial.report(top1, epoch)
            # after the last epoch the training is paid for: a complete result, not a pruned one
            if epoch < last and trial.should_prune():
                raise TrialPruned()

    row = evaluate_params(settings, params, trial.number, on_epoch,
                          log=lambda line: print(f"  trial {trial.number}: {line}", flush=True))
    trial.set_user_attr("row", row)
    if row["status"] in ("complete", "infeasible"):
        study.tell(trial, _objective_values(settings, row))
    elif row["status"] == "pruned":
        study.tell(trial, state=TrialState.PRUNED)
    else:
        study.tell(trial, state=TrialState.FAIL)
    return row


def worker_loop(settings: SearchSettings, deadline: float | None,
                on_row: Callable[[dict], None] | None = None) -> None:
    study = open_study(settings)
    while len(finished(study)) < settings.trials and (deadline is None or time.time() < deadline):
        row = run_trial(study, settings)
        if on_row:
            on_row(row)


def _worker_main(settings_dict: dict, deadline: float | None, parent: int) -> None:
    exit_with_parent(parent)
    import warnings
    warnings.filterwarnings("ignore")
    worker_loop(SearchSettings.from_dict(settings_dict), deadline)


def rows_from_study(study) -> list[dict]:
    return [t.user_attrs["row"] for t in study.get_trials(deepcopy=False) if "row" in t.user_attrs]


def run_optuna(settings: SearchSettings, deadline: float | None, progress: Callable[[list[dict]], None]) -> list[dict]:
    study = open_study(settings)
    # with a shared database, RUNNING trials may belong to live workers elsewhere
    recovered = 0 if settings.storage else recover_interrupted(study)
    if recovered:
        print(f"resume: {recovered} interrupted trial(s) queued again", flush=True)
    done_before = len(finished(study))
    if done_before:
        print(f"resume: {done_before} of {settings.trials} trials already finished", flush=True)
    if hasattr(progress, "done_before"):
        progress.done_before = len(rows_from_study(study))  # ETA from this session's pace only
    if settings.workers == 1:
        worker_loop(settings, deadline, on_row=lambda _: progress(rows_from_study(study)))
    else:
        ctx = mp.get_context("spawn")
        procs = [ctx.Process(target=_worker_main, args=(settings.to_dict(), deadline, os.getpid()),
                             daemon=False)
                 for _ in range(settings.workers)]
        for p in procs:
            p.start()
        seen = -1
        while any(p.is_alive() for p in procs):
            time.sleep(2.0)
            rows = rows_from_study(study)
            if len(rows) != seen:
                seen = len(rows)
                progress(rows)
        for p in procs:
            p.join()
    return rows_from_study(study)
