"""Running a study of fixed variants (the `variants`, `datasets` and `calibration` kinds):
every (dataset, protocol, variant, seed) not trained yet, one row each appended to
`rows.jsonl` as it finishes, so rerunning the command resumes."""
from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..common import UsageError
from ..data import load_dataset
from ..models.checkpoint import save_checkpoint
from ..records.appended import append_rows, keyed_rows
from ..records.rows import identity, row_from_proxy, to_frame
from ..records.runjson import write_study_json
from ..records.tables import write_table
from ..train import ProxyProtocol, train_proxy

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


def run_variants(study: Study, out: Path, log=print, save_weights: bool = False) -> Path:
    """Train every (dataset, protocol, variant, seed) not done yet; `save_weights` keeps each
    complete run's weights in weights/VARIANT-seedS-PROTOCOL[-DATASET].pt."""
    run_dir = Path(out) / study.name
    run_dir.mkdir(parents=True, exist_ok=True)
    rows_path = run_dir / ROWS
    done = _finished_rows(study, rows_path)
    write_run_json(study, run_dir)
    jobs = study.jobs()
    seeds = " + ".join(f"{len(d.seeds)} seeds on {d.name}" for d in study.datasets)
    log(f"study {study.name} ({study.size}): {len(study.variants)} variants x {len(study.protocols)} protocols x "
        f"{seeds}; {len(done)} of {len(jobs)} already done")
    started, trained, loaded = time.time(), 0, {}
    with append_rows(rows_path) as write:
        for d, pname, variant, seed in jobs:
            key = _key(variant, seed, pname, d.name)
            if key in done:
                continue
            if d.name not in loaded:  # only datasets with work left are read
                loaded = {d.name: load_dataset(d.name, root=d.root, seed=0)}
            row = _train(study, run_dir, loaded[d.name], d, pname, variant, seed, save_weights, log)
            write(row)
            done[key] = row
            trained += 1
            left = len(jobs) - len(done)
            eta = f", ETA {dt.timedelta(seconds=round((time.time() - started) / trained * left))}" if left else ""
            where = f" on {d.name}" if len(study.datasets) > 1 else ""
            log(f"[{len(done)}/{len(jobs)}] {variant} seed {seed} {pname}{where}: "
                f"{'top1' if row['final_top1'] is not None else 'score'} {row['score']} "
                f"at {row['flops'] / 1e6:.1f}M ({row['wall_time']:.0f} s{eta})")
    write_table(to_frame(done.values()), run_dir, "trials")
    log(f"results: {run_dir}/trials.parquet; next: python analyze.py {run_dir}")
    return run_dir


def _train(study: Study, run_dir: Path, data, d, pname: str, variant: str, seed: int, save_weights: bool,
           log) -> dict:
    """One proxy training: its row, and its weights kept when asked."""
    cfg = study.variants[variant]
    r = train_proxy(cfg, data, study.protocols[pname], seed=seed, keep_weights=save_weights,
                    log=lambda line: log(f"  {variant} seed {seed} {pname}: {line}"))
    if r.state_dict is not None:
        tag = f"-{d.name}" if len(study.datasets) > 1 else ""
        save_checkpoint(run_dir / "weights" / f"{variant}-seed{seed}-{pname}{tag}.pt", cfg, r.num_classes,
                        r.state_dict, dataset=d.name, data_root=d.root, data_seed=0,
                        resolution=r.proxy_resolution, protocol=study.protocols[pname].to_dict(), seed=seed,
                        study=study.name, variant=variant, final_top1=r.final_top1)
    return row_from_proxy(r, **identity(f"{variant}/{seed}/{pname}", study.name, "study", cfg, seed, d.name,
                                        study.protocols[pname], study=study.name, variant=variant,
                                        protocol_name=pname))


def _finished_rows(study: Study, rows_path: Path) -> dict[str, dict]:
    """Rows already trained; a row whose architecture or protocol no longer matches the
    file would silently mix two studies, so it stops the run instead."""
    done: dict[str, dict] = {}
    data = {d.name: d for d in study.datasets}
    for key, row in keyed_rows(rows_path, row_key).items():
        cfg, proto = study.variants.get(row["variant"]), study.protocols.get(row["protocol_name"])
        if cfg is None or proto is None or row["dataset"] not in data \
                or not study.wants(data[row["dataset"]], row["protocol_name"], row["variant"], row["seed"]):
            continue  # dropped from the file: kept on disk, left out of this study's table
        stored = ProxyProtocol.from_dict(json.loads(row["protocol"])).to_dict()  # older rows lack newer fields
        if json.loads(row["config"]) != cfg.to_dict() or stored != proto.to_dict():
            raise UsageError(f"{rows_path.parent} holds results for a different version of {row['variant']!r} "
                             f"(architecture or protocol changed); pass another --out or delete that folder")
        done[key] = row
    return done
