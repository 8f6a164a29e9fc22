"""Analysis of search runs: Pareto fronts against MobileNetV3, hypervolume, figures
and a markdown report (`python analyze.py`; see docs/analysis.md)."""
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
