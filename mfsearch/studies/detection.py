"""The `detection` study kind: `python search.py --experiment experiments/detection.yaml --size full`.

A study file with `kind: detection` trains one detector per (backbone, init, seed) under
one detection protocol and appends a row per finished run to `runs/NAME/rows.jsonl`, so
rerunning the command resumes. `init: proxy` starts the backbone from the weights of a
classification proxy trained first (under `pretrain`, kept in `pretrain/` and reused);
`scratch` from random weights.

    study: detection
    kind: detection
    data: {name: shapes, n_train: 1500, n_test: 300, image_size: 128, seed: 0}  # or {name: coco, root: DIR}
    protocol: {kind: retinanet, epochs: 6, batch_size: 16, image_size: 128, fpn_channels: 64}
    backbones: [mobile_former_151m, mobilenet_v3_large_075]
    pairs: [[mobile_former_151m, mobilenet_v3_large_075]]   # compared by analyze.py, seed by seed
    inits: [scratch, proxy]
    pretrain: {dataset: shapes, protocol: {epochs: 2}}        # a ProxyProtocol
    paper: {delta_AP: 8.6, setting: "..."}
    seeds: [0, 1]
    sizes: {smoke: {...}, full: {...}}
"""
from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..analysis.detection import analyze_detection
from ..common import UsageError, one_line
from ..data import load_dataset
from ..detection.data import DetectionData, load_detection
from ..detection.train import DetectionProtocol, train_detector
from ..models import get_config
from ..models.checkpoint import read_checkpoint, save_checkpoint
from ..models.config import ModelConfig
from ..records.appended import append_rows, keyed_rows
from ..records.rows import row_from_detection
from ..records.runjson import write_study_json
from ..train import ProxyProtocol, train_proxy
from .registry import StudyKind, register
from .spec import sized_spec

KEYS = {"study", "kind", "description", "data", "protocol", "backbones", "pairs", "inits", "pretrain", "paper",
        "seeds", "sizes"}
INITS = ("scratch", "proxy")
DATA_KEYS = {"name", "root", "n_train", "n_test", "image_size", "max_objects", "seed", "max_side"}


@dataclass(frozen=True)
class DetectionStudy:
    name: str
    size: str
    backbones: dict[str, ModelConfig]
    data: dict[str, Any]
    protocol: DetectionProtocol
    seeds: list[int]
    inits: list[str]
    pairs: list[tuple[str, str]] = field(default_factory=list)
    pretrain: dict[str, Any] = field(default_factory=dict)   # {dataset, root, protocol: ProxyProtocol}
    description: str = ""
    source: dict = field(default_factory=dict)
    kind: str = "detection"


def load_detection_study(path: Path, raw: dict, size: str) -> DetectionStudy:
    """Check a parsed detection study file; every problem is a one-line UsageError."""
    spec = sized_spec(path, raw, size, KEYS)
    try:
        backbones = {str(b): get_config(str(b)) for b in spec.get("backbones") or []}
        if not backbones:
            raise ValueError("`backbones` lists registered model names")
        inits = [str(i) for i in spec.get("inits", ["scratch"])]
        if not inits or set(inits) - set(INITS):
            raise ValueError(f"`inits` takes {' and/or '.join(INITS)}, got {inits}")
        pairs = [tuple(map(str, p)) for p in spec.get("pairs") or []]
        if any(len(p) != 2 or set(p) - set(backbones) for p in pairs):
            raise ValueError("`pairs` holds [mobile_former, baseline] pairs of listed backbones")
        data = dict(spec.get("data") or {"name": "shapes"})
        if set(data) - DATA_KEYS:
            raise ValueError(f"`data` takes {', '.join(sorted(DATA_KEYS))}")
        pre = dict(spec.get("pretrain") or {})
        pretrain = {"dataset": str(pre.get("dataset", "shapes")), "root": pre.get("root"),
                    "protocol": ProxyProtocol(**(pre.get("protocol") or {}))} if "proxy" in inits else {}
        protocol = DetectionProtocol(**(spec.get("protocol") or {}))
    except (TypeError, ValueError, KeyError) as exc:
        raise UsageError(f"experiment {path.stem}: {one_line(exc)}") from None
    return DetectionStudy(name=str(spec.get("study", path.stem)), size=size, backbones=backbones, data=data,
                          protocol=protocol, seeds=[int(s) for s in spec.get("seeds", [0])], inits=inits,
                          pairs=pairs, pretrain=pretrain, description=str(spec.get("description", "")),
                          source=spec)


def _key(backbone: str, init: str, seed: int) -> str:
    return f"{backbone}|{init}|{seed}"


def _finished(study: DetectionStudy, rows_path: Path) -> dict[str, dict]:
    done: dict[str, dict] = {}
    for key, row in keyed_rows(rows_path, lambda r: _key(r["backbone"], r["init"], r["seed"])).items():
        if row["backbone"] not in study.backbones or row["init"] not in study.inits or row["seed"] not in study.seeds:
            continue
        if row["protocol"] != study.protocol.to_dict() or row["data"] != study.data:
            raise UsageError(f"{rows_path.parent} holds results under another detection protocol or data; pass "
                             "another --out or delete that folder")
        done[key] = row
    return done


def _data(study: DetectionStudy) -> DetectionData:
    d = dict(study.data)
    name, root, seed = d.pop("name", "shapes"), d.pop("root", None), int(d.pop("seed", 0))
    return load_detection(name, root, seed=seed, **d)


def _pretrained(study: DetectionStudy, run_dir: Path, backbone: str, seed: int, log) -> tuple[Path, float | None]:
    """The classification proxy's checkpoint for (backbone, seed), trained once and kept."""
    path = run_dir / "pretrain" / f"{backbone}-seed{seed}.pt"
    if path.is_file():
        return path, read_checkpoint(path)["meta"].get("final_top1")
    pre = study.pretrain
    data = load_dataset(pre["dataset"], root=pre["root"], seed=0)
    cfg = study.backbones[backbone]
    r = train_proxy(cfg, data, pre["protocol"], seed=seed, keep_weights=True,
                    log=lambda line: log(f"  pretrain {backbone} seed {seed}: {line}"))
    if r.state_dict is None:
        raise UsageError(f"the classification proxy of {backbone} (seed {seed}) ended {r.status}: {r.error}")
    save_checkpoint(path, cfg, r.num_classes, r.state_dict, dataset=pre["dataset"], data_root=pre["root"],
                    resolution=r.proxy_resolution, protocol=pre["protocol"].to_dict(), seed=seed,
                    final_top1=r.final_top1)
    log(f"  pretrain {backbone} seed {seed}: top-1 {r.final_top1}% on {pre['dataset']} ({r.wall_time:.0f} s)")
    return path, r.final_top1


def run_detection_study(study: DetectionStudy, out: str | Path = "runs", log=print,
                        save_weights: bool = False) -> Path:
    if save_weights:
        raise UsageError("a detection study keeps its pretraining checkpoints only; drop --save-weights")
    run_dir = Path(out) / study.name
    run_dir.mkdir(parents=True, exist_ok=True)
    rows_path = run_dir / "rows.jsonl"
    done = _finished(study, rows_path)
    _write_run_json(study, run_dir)
    jobs = [(b, i, s) for s in study.seeds for i in study.inits for b in study.backbones]   # a partial run is balanced
    log(f"detection study {study.name} ({study.size}): {len(study.backbones)} backbones x {len(study.inits)} inits "
        f"x {len(study.seeds)} seeds, {study.protocol.kind} {study.protocol.epochs} ep at "
        f"{study.protocol.image_size} px; {len(done)} of {len(jobs)} already done")
    data, started, trained = None, time.time(), 0
    with append_rows(rows_path) as write:
        for backbone, init, seed in jobs:
            if _key(backbone, init, seed) in done:
                continue
            data = data or _data(study)
            weights, pre_top1 = _pretrained(study, run_dir, backbone, seed, log) if init == "proxy" else (None, None)
            r = train_detector(backbone, data, study.protocol, seed=seed, weights=weights,
                               log=lambda line, b=backbone, i=init, s=seed: log(f"  {b} {i} seed {s}: {line}"))
            cfg = study.backbones[backbone]
            row = row_from_detection(r, study=study.name, backbone=backbone, family=cfg.family, init=init,
                                     seed=seed, config=cfg.to_dict(), protocol=study.protocol.to_dict(),
                                     data=study.data, dataset=data.name, num_classes=data.num_classes,
                                     pretrain_top1=pre_top1)
            row["finished"] = dt.datetime.now().isoformat(timespec="seconds")
            write(row)
            done[_key(backbone, init, seed)] = row
            trained += 1
            left = len(jobs) - len(done)
            eta = f", ETA {dt.timedelta(seconds=round((time.time() - started) / trained * left))}" if left else ""
            log(f"[{len(done)}/{len(jobs)}] {backbone} {init} seed {seed}: AP {r.AP} AP50 {r.AP50} "
                f"({r.wall_time:.0f} s{eta})")
    log(f"results: {rows_path}; next: python analyze.py {run_dir}")
    return run_dir


def _write_run_json(study: DetectionStudy, run_dir: Path) -> None:
    write_study_json(run_dir, {"study": study.name, "kind": study.kind, "size": study.size,
                               "description": study.description, "spec": study.source})


register(StudyKind("detection", load_detection_study, run_detection_study, analyze_detection, cpu_only=True))
