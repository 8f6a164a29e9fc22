"""`mfsearch analyze` / `mfsearch attention` and analyze.py: fronts, figures and a report for
search runs and studies; attention maps of a trained Mobile-Former."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..analysis import AnalysisError, analyze, headline, latest_run
from ..analysis.attention import analyze_attention
from ..common import OneLineParser, UsageError, one_line
from ..records.runjson import is_study_dir
from ..studies import analyze_study

DESCRIPTION = "Pareto fronts, hypervolume, figures and report.md for search runs; study folders get their study report."
EXAMPLES = """examples:
  python analyze.py                      the latest run under runs/
  python analyze.py runs/a runs/b runs/c --out figs   several budgets in one picture
  python analyze.py runs/proxy_calibration          a study folder
  python analyze.py runs/detection                   a detection study: AP per backbone
  python analyze.py attention runs/150M-...        attention maps of its best.pt"""
ATTENTION = ("Attention maps of a trained Mobile-Former, like the paper's: each token's Mobile->Former map, the "
             "token each pixel reads, token self-attention, entropy per block, and attention.md with the numbers.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="*", help="run folders written by search.py, or one study folder "
                   "(default: the latest run under --runs-root)")
    p.add_argument("--out", help="output folder (default: RUN/analysis, or analysis-TIME next to the runs)")
    p.add_argument("--allow-mixed", action="store_true",
                   help="merge runs whose dataset or proxy protocol differ (refused otherwise)")
    p.add_argument("--runs-root", default="runs", help="where to look for the latest run (default runs/)")


def add_attention_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", help="a run folder with best.pt, or a checkpoint file (.pt)")
    p.add_argument("--images", type=int, default=4, help="test images to draw (default 4, one per class)")
    p.add_argument("--blocks", nargs="+", help="block indices to keep (as attention.md lists them; 'final' for the "
                   "bridge before the head); default all")
    p.add_argument("--per-head", action="store_true", help="one row per head instead of the mean over heads")
    p.add_argument("--data-root", help="where the training dataset is now, if it moved")
    p.add_argument("--out", help="output folder (default: attention/ beside the checkpoint)")


def run(args: argparse.Namespace) -> int:
    try:
        runs = args.runs or [str(latest_run(args.runs_root))]
        if len(runs) == 1 and is_study_dir(Path(runs[0])):
            out, files, line = analyze_study(Path(runs[0]), args.out)
            print(line)
            print(f"wrote {out}/: {', '.join(_shown(f, out) for f in files)}")
            return 0
        result = analyze(runs, out=args.out, allow_mixed=args.allow_mixed, runs_root=args.runs_root)
    except UsageError as exc:   # AnalysisError, and a study folder's own (unreadable rows, unknown kind)
        print(f"{args.prog}: error: {one_line(exc)}", file=sys.stderr)
        return 2
    print(headline(result.runs, result.summary))
    print(f"wrote {result.out_dir}/: {', '.join(f.name for f in result.files)}")
    return 0


def _shown(file: Path, out: Path) -> str:
    """A written file's path under the output folder (a study's sub-reports live in subfolders)."""
    try:
        return str(Path(file).relative_to(out))
    except ValueError:
        return Path(file).name


def run_attention(args: argparse.Namespace) -> int:
    if args.images < 1:
        print(f"{args.prog}: error: --images must be at least 1, got {args.images} (see --help)", file=sys.stderr)
        return 2
    try:
        out, files, line = analyze_attention(args.target, args.out, args.images, args.blocks, args.per_head,
                                             args.data_root)
    except AnalysisError as exc:
        print(f"{args.prog}: error: {one_line(exc)}", file=sys.stderr)
        return 2
    print(line)
    print(f"wrote {out}/: {', '.join(f.name for f in files)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """analyze.py: the same flags and code as `mfsearch analyze`; `analyze.py attention ...` as
    `mfsearch attention ...`."""
    argv = sys.argv[1:] if argv is None else argv
    attention = argv[:1] == ["attention"]
    p = OneLineParser(prog="analyze.py attention" if attention else "analyze.py",
                      description=ATTENTION if attention else DESCRIPTION, epilog=None if attention else EXAMPLES,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    (add_attention_arguments if attention else add_arguments)(p)
    args = p.parse_args(argv[1:] if attention else argv)
    args.prog = p.prog
    return (run_attention if attention else run)(args)
