"""The `datasets` study kind: the same variants trained on several datasets (`datasets:`,
seeds per dataset), run like a `variants` study; analyze.py reports how far the datasets'
rankings agree (does a cheap dataset rank like the real one?)."""
from __future__ import annotations

from pathlib import Path

from ..analysis.studies import analyze_datasets
from .registry import StudyKind, register
from .training import run_variants
from .variants import Study, load_classification


def _check(study: Study) -> None:
    if study.search or len(study.datasets) < 2:
        raise ValueError("a `datasets` study trains its variants on two or more datasets (`datasets:`)")


def load_datasets(path: Path, raw: dict, size: str) -> Study:
    return load_classification(path, raw, size, "datasets", _check)


register(StudyKind("datasets", load_datasets, run_variants, analyze_datasets, workers=True))
