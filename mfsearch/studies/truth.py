"""The `truth` study kind: architectures of one cost band under every cheap protocol a search
may use and under long training on the same data (the protocol named `truth`), run like a
`variants` study; analyze.py ranks every protocol against the truth and reports the regret
of its pick (see mfsearch.analysis.truth)."""
from __future__ import annotations

from pathlib import Path

from ..analysis.studies import analyze_truth
from .registry import StudyKind, register
from .training import run_variants
from .variants import Study, load_classification


def _check(study: Study) -> None:
    if study.search or study.analysis != "truth" or len(study.datasets) > 1:
        raise ValueError("a `truth` study trains fixed variants on one dataset (no `search`, `datasets` or other "
                         "`analysis`)")


def load_truth(path: Path, raw: dict, size: str) -> Study:
    return load_classification(path, raw, size, "truth", _check)


register(StudyKind("truth", load_truth, run_variants, analyze_truth))
