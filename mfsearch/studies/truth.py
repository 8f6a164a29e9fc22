"""The `truth` study kind: architectures of one cost band under every cheap protocol a search
may use and under long training on the same data (the protocol named `truth`), run like a
`variants` study; analyze.py ranks every protocol against the truth and reports the regret
of its pick (see mfsearch.analysis.truth)."""
from __future__ import annotations

from ..analysis.studies import analyze_truth
from .variants import register_ranking_kind

register_ranking_kind("truth", analyze_truth)
