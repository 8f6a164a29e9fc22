"""MobileNetV3 baselines trained with the identical proxy protocol, cached across runs.

With a band, the baselines are compared at the candidates' cost: Large and Small at 224 px
with their width fitted into [band*B, B] (torchvision takes any width multiplier); without
one, the registered widths under the budget, or with `--baseline-widths N` Large and Small
fitted at N costs spread up to the budget (a front of any widths, for a pareto search). A
parameter budget holds them as it holds the candidates: with a band, narrowed within it to
fit; otherwise, or when none fits, left out.

The cache key is (dataset, data root, protocol, seed, architecture, device kind), so a
later run with the same protocol reuses a baseline instead of training it again.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from spaces import SpaceError, fit_to_budget

from ..flops import estimate_flops
from ..models import ModelConfig, families, get_config, list_models
from ..records.rows import identity, row_from_proxy
from ..train import train_proxy
from .evaluate import latency_columns, load_data, measured_latency, under_param_budget
from .settings import SearchSettings

CACHE_DIR = Path("~/.cache/mfsearch/baselines")


def baseline_configs(budget: float, band: float = 0.0, widths: int = 0) -> list[ModelConfig]:
    """The baseline families' models at 224 px: with a band, the registered MobileNetV3 widths
    each fitted in width into [band*B, B] (one per distinct result: Large and Small); with
    `widths` N (and no band), fitted into [0.9 kB/N, kB/N] for k = 1..N, a front of widths
    spread over the budget (torchvision takes any width multiplier); otherwise the registered
    widths whose MAdds fit the budget."""
    cfgs = [get_config(n) for f in families("baseline") for n in list_models(f.name)]
    if band:
        return _fitted(cfgs, [(budget, band)])
    if widths:
        return _fitted(cfgs, [(budget * k / widths, 0.9) for k in range(1, widths + 1)])
    return sorted((c for c in cfgs if estimate_flops(c) <= budget), key=estimate_flops)


def _fitted(cfgs: list[ModelConfig], bands: list[tuple[float, float]]) -> list[ModelConfig]:
    fitted = []
    for budget, low in bands:
        for cfg in cfgs:
            try:
                fit = fit_to_budget(cfg, budget, low)
            except SpaceError:   # e.g. a budget below Large at its narrowest width
                continue
            if fit not in fitted:
                fitted.append(fit)
    return sorted(fitted, key=estimate_flops)


def _key(settings: SearchSettings, cfg: ModelConfig) -> str:
    ident = {"dataset": settings.dataset, "root": str(Path(settings.data_root).resolve()) if settings.data_root
             else None, "protocol": settings.protocol.to_dict(), "seed": settings.seed, "config": cfg.to_dict(),
             "device": settings.resolved_device().split(":")[0]}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:20]


def run_baselines(settings: SearchSettings, cache_dir: Path | None = None,
                  log: Callable[[str], None] = print) -> list[dict]:
    cache = (cache_dir or CACHE_DIR).expanduser()
    cache.mkdir(parents=True, exist_ok=True)
    rows = []
    cfgs = baseline_configs(settings.budget, settings.band, settings.baseline_widths)
    for i, cfg in enumerate(cfgs, 1):
        cfg, over = under_param_budget(settings, cfg)   # held to it as the candidates are
        name = f"mobilenet_v3_{cfg.variant}_{round(cfg.width_mult * 100):03d}"
        if over:
            log(f"baseline {i}/{len(cfgs)} {name}: {over}: not trained")
            continue
        rec = measured_latency(settings, cfg)
        if settings.latency_budget is not None and rec.median_ms > settings.latency_budget:
            log(f"baseline {i}/{len(cfgs)} {name}: {rec.median_ms:.2f} ms, over the latency budget: not trained")
            continue
        path = cache / f"{_key(settings, cfg)}.json"
        if path.is_file():
            row = json.loads(path.read_text())
            log(f"baseline {i}/{len(cfgs)} {name}: top1 {row['final_top1']} (cached)")
        else:
            log(f"baseline {i}/{len(cfgs)} {name}: training ...")
            r = train_proxy(cfg, load_data(settings), settings.protocol, seed=settings.seed,
                            device=settings.resolved_device(), threads=settings.worker_threads * settings.workers,
                            log=lambda line, n=name: log(f"  baseline {n}: {line}"))
            row = row_from_proxy(r, **identity(name, settings.name, "baseline", cfg, settings.seed, settings.dataset,
                                               settings.protocol, variant=cfg.variant, width_mult=cfg.width_mult,
                                               resolution=cfg.resolution))
            if r.status == "complete":
                path.write_text(json.dumps(row))
            log(f"baseline {i}/{len(cfgs)} {name}: top1 {row['final_top1']} ({r.wall_time:.0f} s)")
        rows.append({**row, "run": settings.name, **latency_columns(rec)})
    return rows
