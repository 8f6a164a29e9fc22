"""Running a study of fixed variants (the `variants`, `datasets`, `calibration` and `truth`
kinds): every (dataset, protocol, variant, seed) not trained yet, one row each appended to
`rows.jsonl` as it finishes, so rerunning the command resumes. With `workers` > 1 the
trainings run side by side in worker processes of `threads` torch threads each (on a
2-core CPU two 1-thread trainings did 1.26x the images per second of one 2-thread
training: docs/cli.md)."""
from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import os
import statistics
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..clock import active_seconds
from ..common import UsageError, exit_with_parent
from ..data import load_dataset
from ..models.checkpoint import save_checkpoint
from ..records.appended import append_rows, keyed_rows
from ..records.rows import device_kind, identity, row_from_proxy, to_frame
from ..records.runjson import write_study_json
from ..records.tables import write_table
from ..train import ProxyProtocol, device_name, train_proxy

if TYPE_CHECKING:
    from .variants import Study

ROWS = "rows.jsonl"


def _key(variant: str, seed: int, protocol: str, dataset: str) -> str:
    # the rows.jsonl key of every study written so far: keep it byte for byte
    return f"{variant}|{seed}|{protocol}|{dataset}"


def row_key(row: dict) -> str:
    return _key(row["variant"], row["seed"], row["protocol_name"], row["dataset"])


def write_run_json(study: Any, run_dir: Path, **extra: Any) -> None:
    """A study's run.json, with the kind that runs and analyses it."""
    write_study_json(run_dir, {"study": study.name, "kind": study.kind, "size": study.size,
                               "description": study.description, "spec": study.source,
                               "paper": getattr(study, "paper", None), **extra})


def run_variants(study: Study, out: Path, log=print, save_weights: bool = False, workers: int = 1,
                 threads: int | None = None, device: str = "cpu") -> Path:
    """Train every (dataset, protocol, variant, seed) not done yet on `device`, `workers` at a
    time with `threads` torch threads each (default: the cores shared out); `save_weights` keeps
    each complete run's weights in weights/VARIANT-seedS-PROTOCOL[-DATASET].pt."""
    if workers < 1 or (threads is not None and threads < 1):
        raise UsageError("--workers and --threads must be at least 1")
    run_dir = Path(out) / study.name
    run_dir.mkdir(parents=True, exist_ok=True)
    rows_path = run_dir / ROWS
    done = _finished_rows(study, rows_path, device)
    write_run_json(study, run_dir, device=device_name(device))
    jobs = study.jobs()
    seeds = " + ".join(f"{len(d.seeds)} seeds on {d.name}" for d in study.datasets)
    log(f"study {study.name} ({study.size}): {len(study.variants)} variants x {len(study.protocols)} protocols x "
        f"{seeds}; {len(done)} of {len(jobs)} already done" + (f"; {workers} workers" if workers > 1 else ""))
    todo = [job for job in jobs if _key(job[2], job[3], job[1], job[0].name) not in done]
    left = TimeLeft(study.protocols, done.values(), todo)
    with append_rows(rows_path) as write:
        runs = _in_parallel(study, run_dir, todo, save_weights, workers, threads, device) if workers > 1 \
            else _in_turn(study, run_dir, todo, save_weights, threads, device, log)
        for job, row in runs:
            d, pname, variant, seed = job
            write(row)
            done[_key(variant, seed, pname, d.name)] = row
            eta = left.after(job, row)
            where = f" on {d.name}" if len(study.datasets) > 1 else ""
            log(f"[{len(done)}/{len(jobs)}] {variant} seed {seed} {pname}{where}: "
                f"{'top1' if row['final_top1'] is not None else 'score'} {row['score']} "
                f"at {row['flops'] / 1e6:.1f}M ({row['wall_time']:.0f} s{eta})")
    write_table(to_frame(done.values()), run_dir, "trials")
    log(f"results: {run_dir}/trials.parquet; next: python analyze.py {run_dir}")
    return run_dir


Job = tuple[Any, str, str, int]   # (StudyData, protocol name, variant, seed)


def _images(row: dict) -> float:
    """The training images a row's run went through (the same on any host)."""
    return float(row.get("images_per_s") or 0) * float(row.get("train_time") or 0)


class TimeLeft:
    """A study's time left from the training images it has still to go through: its runs
    differ a thousandfold in length (a 0-epoch score against 8 epochs on all the data), so
    the time per finished run misleads. A (dataset, protocol)'s images per run are its
    finished rows' median, or scaled by epochs x data fraction from another protocol's on the
    same data; the rate is the images trained since this start per second of wall time (pauses left out)."""

    def __init__(self, protocols: dict[str, ProxyProtocol], rows: Iterable[dict], todo: list[Job],
                 clock: Callable[[], float] = active_seconds):
        seen: dict[tuple[str, str], list[float]] = {}
        for r in rows:
            if r.get("status") == "complete":
                seen.setdefault((r["dataset"], r["protocol_name"]), []).append(_images(r))
        known = {k: statistics.median(v) for k, v in seen.items()}
        self.per_run = {(d.name, p): self._estimate(known, protocols, d.name, p) for d, p, _, _ in todo}
        self.left = None if None in self.per_run.values() else sum(self.per_run[(d.name, p)] for d, p, _, _ in todo)
        self.todo, self.clock, self.started, self.trained, self.finished = todo, clock, clock(), 0.0, 0

    @staticmethod
    def _estimate(known: dict, protocols: dict[str, ProxyProtocol], dataset: str, pname: str) -> float | None:
        if (dataset, pname) in known:
            return known[(dataset, pname)]
        size = {p: protocols[p].epochs * protocols[p].data_fraction for p in protocols}
        ref = next(((p, v) for (d, p), v in known.items() if d == dataset and size.get(p) and v), None)
        return 0.0 if not size[pname] else ref[1] * size[pname] / size[ref[0]] if ref else None

    def after(self, job: Job, row: dict) -> str:
        """', ETA h:mm:ss' once `job` has finished as `row` ('' when nothing is left)."""
        self.finished += 1
        self.trained += _images(row)
        elapsed = self.clock() - self.started
        if self.finished >= len(self.todo):
            return ""
        if self.left is not None:
            self.left = max(0.0, self.left - self.per_run[(job[0].name, job[1])])
        if self.left is None or not self.trained:   # nothing to go by but the time per run so far
            seconds = elapsed / self.finished * (len(self.todo) - self.finished)
        else:
            seconds = self.left / (self.trained / elapsed)
        return f", ETA {dt.timedelta(seconds=round(seconds))}"


def _in_turn(study: Study, run_dir: Path, todo: list[Job], save_weights: bool, threads: int | None, device: str,
             log) -> Iterator[tuple[Job, dict]]:
    """The trainings one after another in this process, each row as it finishes."""
    loaded = {}
    for job in todo:
        d = job[0]
        if d.name not in loaded:  # only datasets with work left are read
            loaded = {d.name: load_dataset(d.name, root=d.root, seed=0)}
        yield job, _train(study, run_dir, loaded[d.name], *job, save_weights, threads, device, log)


def _in_parallel(study: Study, run_dir: Path, todo: list[Job], save_weights: bool, workers: int,
                 threads: int | None, device: str) -> Iterator[tuple[Job, dict]]:
    """The trainings in `workers` processes, each row as it finishes."""
    threads = threads or max(1, (os.cpu_count() or 1) // workers)
    yield from side_by_side(partial(_train_in_worker, study, run_dir, save_weights=save_weights, threads=threads,
                                    device=device), todo, workers)


def side_by_side(fn: Callable[[Any], Any], jobs: list, workers: int) -> Iterator[tuple[Any, Any]]:
    """(job, fn(job)) for every job, in `workers` spawned processes (a forked torch can
    deadlock), each as it finishes; the list's order decides which start first. Stopping
    cancels the queue, and a worker whose parent is killed exits too. `fn` must pickle: a
    module-level function or a partial of one."""
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=exit_with_parent, initargs=(os.getpid(),))
    try:
        futures = {pool.submit(fn, job): job for job in jobs}
        for future in as_completed(futures):
            yield futures[future], future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


_WORKER_DATA: dict[str, Any] = {}   # a worker process's decoded dataset, kept across its trainings


def _train_in_worker(study: Study, run_dir: Path, job: Job, *, save_weights: bool, threads: int,
                     device: str) -> dict:
    d = job[0]
    if d.name not in _WORKER_DATA:
        _WORKER_DATA.clear()
        _WORKER_DATA[d.name] = load_dataset(d.name, root=d.root, seed=0)
    return _train(study, run_dir, _WORKER_DATA[d.name], *job, save_weights, threads, device,
                  lambda line: print(line, flush=True))


def _train(study: Study, run_dir: Path, data, d, pname: str, variant: str, seed: int, save_weights: bool,
           threads: int | None, device: str, log) -> dict:
    """One proxy training on `device` (at `threads` torch threads; None: as set): its row, and
    its weights kept when asked."""
    cfg = study.variants[variant]
    r = train_proxy(cfg, data, study.protocols[pname], seed=seed, keep_weights=save_weights, threads=threads,
                    device=device, log=lambda line: log(f"  {variant} seed {seed} {pname}: {line}"))
    if r.state_dict is not None:
        tag = f"-{d.name}" if len(study.datasets) > 1 else ""
        save_checkpoint(run_dir / "weights" / f"{variant}-seed{seed}-{pname}{tag}.pt", cfg, r.num_classes,
                        r.state_dict, dataset=d.name, data_root=d.root, data_seed=0,
                        resolution=r.proxy_resolution, protocol=study.protocols[pname].to_dict(), seed=seed,
                        study=study.name, variant=variant, final_top1=r.final_top1)
    return row_from_proxy(r, **identity(f"{variant}/{seed}/{pname}", study.name, "study", cfg, seed, d.name,
                                        study.protocols[pname], study=study.name, variant=variant,
                                        protocol_name=pname))


def _finished_rows(study: Study, rows_path: Path, device: str = "cpu") -> dict[str, dict]:
    """Rows already trained; a row whose architecture or protocol no longer matches the
    file, or that trained on another kind of device than `device` (bf16 on CUDA, fp32 on the
    CPU), would silently mix two studies, so it stops the run instead."""
    done: dict[str, dict] = {}
    data = {d.name: d for d in study.datasets}
    for key, row in keyed_rows(rows_path, row_key).items():
        cfg, proto = study.variants.get(row["variant"]), study.protocols.get(row["protocol_name"])
        if cfg is None or proto is None or row["dataset"] not in data \
                or not study.wants(data[row["dataset"]], row["protocol_name"], row["variant"], row["seed"]):
            continue  # dropped from the file: kept on disk, left out of this study's table
        if json.loads(row["config"]) != cfg.to_dict() or ProxyProtocol.of_row(row) != proto:
            raise UsageError(f"{rows_path.parent} holds results for a different version of {row['variant']!r} "
                             f"(architecture or protocol changed); pass another --out or delete that folder")
        trained_on = device_kind(row.get("device"))
        if trained_on != device_kind(device):
            raise UsageError(f"{rows_path.parent} holds rows trained on {trained_on}; resume it with --device "
                             f"{trained_on}, or pass another --out")
        done[key] = row
    return done
