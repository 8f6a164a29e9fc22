#!/usr/bin/env python
"""Pareto fronts against MobileNetV3, figures and a report for search runs:
`python analyze.py [RUN ...] [--out DIR]` (see --help and docs/analysis.md)."""
import argparse
import sys
from pathlib import Path


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, no usage dump
        print(f"analyze.py: error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


def main(argv: list[str] | None = None) -> int:
    p = _Parser(prog="analyze.py", description="Pareto fronts, hypervolume, figures and report.md for search runs.",
                epilog="examples:\n  python analyze.py                      the latest run under runs/\n"
                       "  python analyze.py runs/a runs/b runs/c --out figs   several budgets in one picture",
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="*", help="run folders written by search.py (default: the latest under --runs-root)")
    p.add_argument("--out", help="output folder (default: RUN/analysis, or analysis-TIME next to the runs)")
    p.add_argument("--allow-mixed", action="store_true",
                   help="merge runs whose dataset or proxy protocol differ (refused otherwise)")
    p.add_argument("--runs-root", default="runs", help="where to look for the latest run (default runs/)")
    args = p.parse_args(argv)
    from mfsearch.analysis import AnalysisError, analyze, headline
    from mfsearch.analysis.studies import analyze_study, is_study_dir
    from mfsearch.analysis.load import latest_run
    try:
        runs = args.runs or [str(latest_run(args.runs_root))]
        if len(runs) == 1 and is_study_dir(Path(runs[0])):
            out, files, line = analyze_study(Path(runs[0]), args.out)
            print(line)
            print(f"wrote {out}/: {', '.join(f.name for f in files)}")
            return 0
        result = analyze(runs, out=args.out, allow_mixed=args.allow_mixed, runs_root=args.runs_root)
    except AnalysisError as exc:
        print(f"analyze.py: error: {exc}", file=sys.stderr)
        return 2
    print(headline(result.runs, result.summary))
    names = ", ".join(f.name for f in result.files)
    print(f"wrote {result.out_dir}/: {names}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
