#!/usr/bin/env python
"""Pareto fronts against MobileNetV3, figures and a report for search runs and studies:
`python analyze.py [RUN ...] [--out DIR]`; attention maps of a trained Mobile-Former:
`python analyze.py attention RUN_OR_CHECKPOINT` (see --help and docs/analysis.md)."""
import argparse
import sys
import warnings
from pathlib import Path

# libraries' import-time deprecation notes would break the one-line error contract
warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning)

from mfsearch.analysis import AnalysisError, analyze, headline, latest_run  # noqa: E402
from mfsearch.analysis.attention import analyze_attention  # noqa: E402
from mfsearch.common import OneLineParser, UsageError, one_line  # noqa: E402
from mfsearch.records.runjson import is_study_dir  # noqa: E402
from mfsearch.studies import analyze_study  # noqa: E402


def attention_main(argv: list[str]) -> int:
    p = OneLineParser(prog="analyze.py attention", description="Attention maps of a trained Mobile-Former, like the "
                      "paper's: each token's Mobile->Former map, the token each pixel reads, token self-attention, "
                      "entropy per block, and attention.md with the numbers.")
    p.add_argument("target", help="a run folder with best.pt, or a checkpoint file (.pt)")
    p.add_argument("--images", type=int, default=4, help="test images to draw (default 4, one per class)")
    p.add_argument("--blocks", nargs="+", help="block indices to keep (as attention.md lists them; 'final' for the "
                   "bridge before the head); default all")
    p.add_argument("--per-head", action="store_true", help="one row per head instead of the mean over heads")
    p.add_argument("--data-root", help="where the training dataset is now, if it moved")
    p.add_argument("--out", help="output folder (default: attention/ beside the checkpoint)")
    args = p.parse_args(argv)
    if args.images < 1:
        p.error(f"--images must be at least 1, got {args.images}")
    try:
        out, files, line = analyze_attention(args.target, args.out, args.images, args.blocks, args.per_head,
                                             args.data_root)
    except AnalysisError as exc:
        print(f"analyze.py attention: error: {one_line(exc)}", file=sys.stderr)
        return 2
    print(line)
    print(f"wrote {out}/: {', '.join(f.name for f in files)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["attention"]:
        return attention_main(argv[1:])
    p = OneLineParser(prog="analyze.py", description="Pareto fronts, hypervolume, figures and report.md for "
                      "search runs; study folders get their study report.",
                      epilog="examples:\n  python analyze.py                      the latest run under runs/\n"
                             "  python analyze.py runs/a runs/b runs/c --out figs   several budgets in one picture\n"
                             "  python analyze.py runs/proxy_calibration          a study folder\n"
                             "  python analyze.py runs/detection                   a detection study: AP per backbone\n"
                             "  python analyze.py attention runs/150M-...        attention maps of its best.pt",
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
    except UsageError as exc:   # AnalysisError, and a study folder's own (unreadable rows, unknown kind)
        print(f"analyze.py: error: {one_line(exc)}", file=sys.stderr)
        return 2
    print(headline(result.runs, result.summary))
    print(f"wrote {result.out_dir}/: {', '.join(f.name for f in result.files)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
