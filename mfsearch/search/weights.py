"""Trained weights of a search run (`--save-weights best|all|none`).

Every complete trial's weights go to `weights/trial_ID.pt` as it finishes. With `best`,
only the trials that can still become the best (the top max(1, confirm_top) by top-1 so
far, read from the reuse index every worker appends to) keep theirs, so disk use stays
at a few models; at the end the chosen trial's file becomes `best.pt` and `weights/`
goes. With `all`, `weights/` stays too. Checkpoints load with `mfsearch.load_checkpoint`.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from ..models import ModelConfig
from ..models.checkpoint import read_checkpoint, save_checkpoint
from ..records.appended import read_rows
from .settings import SearchSettings

WEIGHTS_DIR = "weights"
BEST = "best.pt"


def trial_path(run_dir: Path, trial_id) -> Path:
    return Path(run_dir) / WEIGHTS_DIR / f"trial_{trial_id}.pt"


def keep_trial(settings: SearchSettings, row: dict, cfg: ModelConfig, result, trained: str) -> None:
    """Save a complete trial's weights; with `best`, drop those that can no longer win.
    `trained`: the reuse index (complete rows of this run, this one already in it)."""
    if settings.save_weights == "none" or result.state_dict is None:
        return
    save_checkpoint(trial_path(settings.run_dir, row["trial_id"]), cfg, result.num_classes, result.state_dict,
                    dataset=settings.dataset, data_root=settings.data_root, data_seed=settings.seed,
                    test_split=settings.test_split, resolution=result.proxy_resolution,
                    protocol=settings.protocol.to_dict(), seed=settings.seed, trial_id=str(row["trial_id"]),
                    final_top1=row["final_top1"], run=settings.name)
    if settings.save_weights == "best":
        _prune(settings, settings.run_dir / trained)


def _prune(settings: SearchSettings, index: Path) -> None:
    done = [r for r in read_rows(index) if r.get("status") == "complete" and r.get("final_top1") is not None]
    keep = sorted(done, key=lambda r: (-r["final_top1"], r["flops"]))[:max(1, settings.confirm_top)]
    wanted = {trial_path(settings.run_dir, r["trial_id"]).name for r in keep}
    for f in (settings.run_dir / WEIGHTS_DIR).glob("trial_*.pt"):
        if f.name not in wanted:
            f.unlink(missing_ok=True)


def finish(settings: SearchSettings, best: pd.Series | None) -> Path | None:
    """best.pt from the chosen trial (its source's file when it reused another's result)."""
    folder, out = settings.run_dir / WEIGHTS_DIR, settings.run_dir / BEST
    if best is not None and settings.save_weights != "none":
        source = best.get("reused_from")
        trial = source if isinstance(source, str) and source else str(best["trial_id"])
        src = trial_path(settings.run_dir, trial)
        if src.is_file():
            tmp = out.with_name(BEST + ".tmp")
            shutil.copyfile(src, tmp)
            tmp.replace(out)
        elif out.is_file() and read_checkpoint(out)["meta"].get("trial_id") != trial:
            out.unlink()   # from an earlier stop whose best is not this run's best any more
    if settings.save_weights == "best" and folder.is_dir():
        shutil.rmtree(folder)
    return out if out.is_file() else None
