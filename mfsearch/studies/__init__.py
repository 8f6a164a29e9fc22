"""Studies as files (`python search.py --experiment experiments/NAME.yaml`), one module per
registered kind: `variants` (a fixed list of architectures; its module documents the file
format), `budgets` (one search per budget), `datasets` (the same variants on several
datasets), `calibration` (protocols ranked against published top-1), `truth` (protocols
ranked against long training on the same data), `search_quality` (ways to search, each
search's pick trained long) and `detection` (backbones as detectors).
`registry` looks a kind up by name: the kind a file names, or the one `kind_of` decides, is
written in run.json and decides how the folder is analysed.
"""
from . import budgets, calibration, datasets, detection, quality, truth, variants  # noqa: F401  (each registers its kind)
from .registry import KINDS, analyze_study, get_kind, kind_of, load_study, recorded_kind, run_study
from .spec import read_study_file

__all__ = ["KINDS", "analyze_study", "get_kind", "kind_of", "load_study", "recorded_kind", "run_study",
           "read_study_file"]
