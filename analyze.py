#!/usr/bin/env python
"""Pareto fronts against MobileNetV3, figures and a report for search runs and studies:
`python analyze.py [RUN ...] [--out DIR]`; attention maps of a trained Mobile-Former:
`python analyze.py attention RUN_OR_CHECKPOINT` (see --help and docs/analysis.md).
The same as `mfsearch analyze` and `mfsearch attention`."""
import sys
import warnings

# libraries' import-time deprecation notes would break the one-line error contract
warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning)

from mfsearch.cli.analyze import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
