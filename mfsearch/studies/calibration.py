"""The `calibration` study kind: models with a published ImageNet top-1 under several proxy
protocols (trained ones and 0-epoch scores), run like a `variants` study; analyze.py ranks
every protocol against the published top-1 (see mfsearch.analysis.calibration)."""
from __future__ import annotations

from pathlib import Path

from ..analysis.studies import analyze_calibration
from .registry import StudyKind, register
from .training import run_variants
from .variants import Study, load_classification


def _check(study: Study) -> None:
    if study.search or study.analysis != "calibration" or len(study.datasets) > 1:
        raise ValueError("a `calibration` study trains fixed variants on one dataset (no `search`, `datasets` or "
                         "other `analysis`)")


def load_calibration(path: Path, raw: dict, size: str) -> Study:
    return load_classification(path, raw, size, "calibration", _check)


register(StudyKind("calibration", load_calibration, run_variants, analyze_calibration))
