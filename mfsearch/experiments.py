"""Studies as files: `python search.py --experiment experiments/NAME.yaml [--size smoke|full]`.

A study trains a fixed list of architectures (`variants`), each under every seed, with
one proxy protocol per entry of `protocols` (one protocol unless the study compares
proxies), and writes the rows to `runs/NAME/trials.parquet` in the search results
schema plus `study`, `variant`, `protocol_name`. Finished (variant, seed, protocol)
triples are kept in `rows.jsonl` as they finish, so rerunning the command resumes.

File layout (every key can be overridden per size under `sizes:`):

    study: tokens
    description: ...
    base: mobile_former_151m          # registered name for variants without `model`
    budget: 150M                      # optional: width-fit each variant into [0.9 B, B]
    variants: {tokens1: {tokens: 1}, ...}   # overrides of MobileFormerConfig fields,
                                            # or {model: NAME}; or `sample:` (below)
    sample: {count: 12, budget: 150M, seed: 0}   # instead of variants: random space draws
    seeds: [0, 1, 2]
    dataset: cifar10
    data_root: ../shared/data/cifar10
    protocols: {default: {epochs: 3, data_fraction: 0.2}}
    sizes: {smoke: {...}, full: {...}}
"""
from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .models import MobileFormerConfig, get_config
from .search.errors import UsageError
from .search.parse import parse_budget
from .search.results import row_from_proxy, to_frame, write_table
from .search.settings import environment
from .train import ProxyProtocol, train_proxy

KEYS = {"study", "description", "base", "budget", "variants", "sample", "seeds", "dataset", "data_root",
        "protocols", "sizes"}


@dataclass
class Study:
    name: str
    size: str
    variants: dict[str, Any]                       # variant name -> config
    seeds: list[int]
    dataset: str
    data_root: str | None
    protocols: dict[str, ProxyProtocol]
    description: str = ""
    budget: float | None = None
    source: dict = field(default_factory=dict)


REPLACED_WHOLE = {"variants", "protocols", "sample"}  # a size's list replaces the study's


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        nested = isinstance(v, dict) and isinstance(out.get(k), dict) and k not in REPLACED_WHOLE
        out[k] = _merge(out[k], v) if nested else v
    return out


def load_study(path: str | Path, size: str = "smoke") -> Study:
    """Read and check a study file; every problem is a one-line UsageError."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"experiment file {path} not found; see experiments/ for the studies provided")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UsageError(f"experiment file {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(raw, dict) or set(raw) - KEYS:
        raise UsageError(f"experiment file {path}: unknown keys {sorted(set(raw) - KEYS) if isinstance(raw, dict) else raw}")
    sizes = raw.get("sizes") or {}
    if size not in sizes:
        raise UsageError(f"experiment {path.stem} has no size {size!r}; choose one of {', '.join(sizes) or 'none'}")
    spec = _merge({k: v for k, v in raw.items() if k != "sizes"}, sizes[size] or {})
    root = spec.get("data_root")
    if root and not Path(root).is_absolute():  # relative to the repository, where the files live
        root = str((path.resolve().parents[1] / root).resolve())
    budget = parse_budget(str(spec["budget"])) if spec.get("budget") else None
    try:
        protocols = {n: ProxyProtocol(**p) for n, p in (spec.get("protocols") or {"default": {}}).items()}
        variants = _variants(spec, budget)
    except (TypeError, ValueError, KeyError) as exc:
        raise UsageError(f"experiment {path.stem}: {' '.join(str(exc).split())}") from None
    return Study(name=spec.get("study", path.stem), size=size, variants=variants,
                 seeds=[int(s) for s in spec.get("seeds", [0])], dataset=spec.get("dataset", "synthetic"),
                 data_root=root, protocols=protocols, description=spec.get("description", ""), budget=budget,
                 source=spec)


def _variants(spec: dict, budget: float | None) -> dict[str, Any]:
    from spaces import MobileFormerSpace, fit_to_budget
    if "sample" in spec:
        s = spec["sample"]
        cap = parse_budget(str(s["budget"]))
        rng = random.Random(int(s.get("seed", 0)))
        space = MobileFormerSpace()
        return {f"sample{i:02d}": space.sample(rng, max_flops=cap) for i in range(int(s["count"]))}
    out = {}
    for name, over in (spec.get("variants") or {}).items():
        over = dict(over or {})
        cfg = get_config(over.pop("model", spec.get("base")), **over)
        if budget is not None and isinstance(cfg, MobileFormerConfig):
            cfg = fit_to_budget(cfg, budget)
        out[name] = cfg
    if not out:
        raise ValueError("no variants: give `variants` or `sample`")
    return out


def _key(variant: str, seed: int, protocol: str) -> str:
    return f"{variant}|{seed}|{protocol}"


def run_study(study: Study, out: str | Path = "runs", log=print) -> Path:
    from .data import load_dataset
    run_dir = Path(out) / study.name
    run_dir.mkdir(parents=True, exist_ok=True)
    rows_path = run_dir / "rows.jsonl"
    done = {}
    if rows_path.is_file():
        for line in rows_path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                done[_key(row["variant"], row["seed"], row["protocol_name"])] = row
    (run_dir / "run.json").write_text(json.dumps({
        "study": study.name, "size": study.size, "description": study.description, "spec": study.source,
        "started": dt.datetime.now().isoformat(timespec="seconds"), **environment()}, indent=2, default=str))
    data = load_dataset(study.dataset, root=study.data_root, seed=0)
    jobs = [(v, s, p) for p in study.protocols for v in study.variants for s in study.seeds]
    log(f"study {study.name} ({study.size}): {len(study.variants)} variants x {len(study.seeds)} seeds x "
        f"{len(study.protocols)} protocols on {study.dataset}; {len(done)} of {len(jobs)} already done")
    with rows_path.open("a") as sink:
        for i, (variant, seed, pname) in enumerate(jobs, 1):
            if _key(variant, seed, pname) in done:
                continue
            cfg = study.variants[variant]
            r = train_proxy(cfg, data, study.protocols[pname], seed=seed)
            family = "mobile_former" if isinstance(cfg, MobileFormerConfig) else "mobilenet_v3"
            row = row_from_proxy(r, trial_id=f"{variant}/{seed}/{pname}", run=study.name, backend="study",
                                 family=family, config=cfg.to_dict(), seed=seed, dataset=study.dataset,
                                 protocol=study.protocols[pname].to_dict(), study=study.name, variant=variant,
                                 protocol_name=pname)
            sink.write(json.dumps(row) + "\n")
            sink.flush()
            done[_key(variant, seed, pname)] = row
            log(f"[{i}/{len(jobs)}] {variant} seed {seed} {pname}: top1 {r.final_top1} "
                f"at {row['flops'] / 1e6:.1f}M ({r.wall_time:.0f} s)")
    write_table(to_frame(done.values()), run_dir, "trials")
    log(f"results: {run_dir}/trials.parquet; next: python analyze.py {run_dir}")
    return run_dir
