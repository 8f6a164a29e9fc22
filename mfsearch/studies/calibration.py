"""The `calibration` study kind: models with a published ImageNet top-1 under several proxy
protocols (trained ones and 0-epoch scores), run like a `variants` study; analyze.py ranks
every protocol against the published top-1 (see mfsearch.analysis.calibration)."""
from __future__ import annotations

from ..analysis.studies import analyze_calibration
from .variants import register_ranking_kind

register_ranking_kind("calibration", analyze_calibration)
