#!/usr/bin/env python
"""Pareto fronts against MobileNetV3, figures and a report for search runs and studies:
`python analyze.py [RUN ...] [--out DIR]` (see --help and docs/analysis.md)."""
import argparse
import sys
import warnings
from pathlib import Path

# libraries' import-time deprecation notes would break the one-line error contract
warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning)

from mfsearch.analysis import AnalysisError, analyze, headline, latest_run  # noqa: E402
from mfsearch.analysis.studies import analyze_study, is_study_dir  # noqa: E402
from mfsearch.common import OneLineParser, one_line  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="analyze.py", description="Pareto fronts, hypervolume, figures and report.md for "
                      "search runs; study folders get their study report.",
                      epilog="examples:\n  python analyze.py                      the latest run under runs/\n"
                             "  python analyze.py runs/a runs/b runs/c --out figs   several budgets in one picture\n"
                             "  python analyze.py runs/proxy_calibration          a study folder",
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="*", help="run folders written by search.py, or one study folder "
                   "(default: the latest run under --runs-root)")
    p.add_argument("--out", help="output folder (default: RUN/analysis, or analysis-TIME next to the runs)")
    p.add_argument("--allow-mixed", action="store_true",
                   help="merge runs whose dataset or proxy protocol differ (refused otherwise)")
    p.add_argument("--runs-root", default="runs", help="where to look for the latest run (default runs/)")
    args = p.parse_args(argv)
    try:
        runs = args.runs or [str(latest_run(args.runs_root))]
        if len(runs) == 1 and is_study_dir(Path(runs[0])):
            out, files, line = analyze_study(Path(runs[0]), args.out)
            print(line)
            print(f"wrote {out}/: {', '.join(f.name for f in files)}")
            return 0
        result = analyze(runs, out=args.out, allow_mixed=args.allow_mixed, runs_root=args.runs_root)
    except AnalysisError as exc:
        print(f"analyze.py: error: {one_line(exc)}", file=sys.stderr)
        return 2
    print(headline(result.runs, result.summary))
    print(f"wrote {result.out_dir}/: {', '.join(f.name for f in result.files)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
