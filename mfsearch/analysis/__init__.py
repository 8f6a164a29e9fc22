"""Analysis of search runs: Pareto fronts against MobileNetV3, hypervolume, figures
and a markdown report (`python analyze.py`; see docs/analysis.md)."""
import matplotlib

# the one place the backend is chosen: every analysis module runs this package first, and
# figures are written to files, never shown (servers, CI, no display)
matplotlib.use("Agg")

from .load import AnalysisError, RunInfo, RunSet, latest_run, load_runs
from .pareto import (
                     EDF,
                     EDFComparison,
                     bucket_edges,
                     compare_fronts,
                     design_space_edfs,
                     hypervolume,
                     pareto_front,
                     progress,
                     reach_x,
                     step_value,
)
from .report import AnalysisResult, Summary, analyze, headline, render_report, summarize

__all__ = ["AnalysisError", "RunInfo", "RunSet", "latest_run", "load_runs", "EDF", "EDFComparison", "bucket_edges",
           "compare_fronts", "design_space_edfs", "hypervolume", "pareto_front", "progress", "reach_x",
           "step_value", "AnalysisResult", "Summary", "analyze", "headline", "render_report", "summarize"]
