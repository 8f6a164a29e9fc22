"""`mfsearch latency`: every registered model (or the ones named) timed under each runtime,
printed as a table, kept as JSON (`--json`, redrawn with `--from-json`) and drawn (`--plot`).
With `--profile`: where the time goes, per part of each model (default: the 7 Mobile-Former
presets), beside each part's share of the MAdds (mfsearch.profile; docs/latency.md).

Timing: fixed threads, batch and input, untimed warm-up runs, then interleaved rounds of one
untimed and a burst of timed runs per model (mfsearch.latency); each pass is independent and
the table's `repeat` column says how far later passes agree with the first."""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from ..analysis.latency import plot_latency_table
from ..common import UsageError, one_line
from ..latency import RUNTIMES, LatencyRecord, Timing, check_runtime, host, table
from ..models import compared, get_config, list_models
from . import profile as profile_cli


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", nargs="+", help="registered names or config JSON files, e.g. a search's front points "
                   "to time again in one sitting (default: the Mobile-Former presets and MobileNetV3 widths; with "
                   "--profile the 7 Mobile-Former presets)")
    p.add_argument("--runtimes", nargs="+", default=list(RUNTIMES), help=f"{', '.join(RUNTIMES)} (default both)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=2, help="independent passes (agreement column; default 2)")
    p.add_argument("--min-seconds", type=float, default=1.0, help="timed seconds per model and pass at least")
    p.add_argument("--plot", help="write latency against MAdds per family to this PNG")
    p.add_argument("--json", help="write every record to this JSON file")
    p.add_argument("--from-json", help="print the table (and --plot) from a file --json wrote, measuring nothing")
    p.add_argument("--profile", action="store_true", help="where the time goes: ms and %% per part of each model "
                   "beside its MAdds %% (--repeats and --plot do not apply)")
    p.add_argument("--runs", type=int, default=50, help="profiled runs per model and runtime (--profile; default 50)")


def run(args: argparse.Namespace) -> int:
    if args.profile:
        return profile_cli.run(args)
    args.models = args.models or [n for f in compared() for n in list_models(f.name)]   # the README's table
    try:
        rows, runtimes = _rows(args)
    except (UsageError, KeyError, ValueError) as exc:
        print(f"{args.prog}: error: {one_line(exc)}", file=sys.stderr)
        return 2
    _print_table(rows, runtimes)
    if args.json and not args.from_json:
        Path(args.json).write_text(json.dumps([{**{k: v for k, v in r.items() if k not in runtimes},
                                                **{rt: [x.to_dict() for x in r[rt]] for rt in runtimes}}
                                               for r in rows], indent=1))
    if args.plot:
        plot_latency_table(rows, runtimes, Path(args.plot))
    return 0


def _rows(args: argparse.Namespace) -> tuple[list[dict], list[str]]:
    """The table's rows: read from --from-json, or measured now."""
    for rt in args.runtimes:
        check_runtime(rt)
    for m in args.models:
        get_config(m)
    if args.threads < 1 or args.repeats < 1:
        raise UsageError("--threads and --repeats must be at least 1")
    if args.from_json:
        rows, runtimes = rows_from_json(Path(args.from_json))
        first = rows[0][runtimes[0]][0]
        print(f"from {args.from_json}: host {first.host}; batch {first.batch}, {first.threads} thread(s), "
              f"{len(rows[0][runtimes[0]])} passes")
        return rows, runtimes
    print(f"host {host()}; batch 1, {args.threads} thread(s), each model at its own resolution, "
          f"1000 classes; models interleaved; {args.repeats} passes", flush=True)
    return table(args.models, args.runtimes, args.threads, Timing(min_seconds=args.min_seconds),
                 args.repeats), args.runtimes


def rows_from_json(path: Path) -> tuple[list[dict], list[str]]:
    """The rows (and runtimes) a `--json` file holds, for redrawing without measuring again."""
    try:
        data = json.loads(Path(path).read_text())
        runtimes = [rt for rt in RUNTIMES if rt in data[0]]
        rows = [{**{k: v for k, v in r.items() if k not in RUNTIMES},
                 **{rt: [LatencyRecord(**x) for x in r[rt]] for rt in runtimes}} for r in data]
    except (OSError, ValueError, TypeError, KeyError, IndexError) as exc:
        raise UsageError(f"{path} is not a latency file written by --json ({one_line(exc)})") from None
    return rows, runtimes
def _print_table(rows: list[dict], runtimes: list[str]) -> None:
    head = f"{'model':<26}{'MAdds':>9}" + "".join(f"{rt + ' ms (p10-p90)':>30}{'repeat':>8}" for rt in runtimes)
    print(head + f"{'ms per 100M (' + runtimes[0] + ')':>26}")
    for r in rows:
        line = f"{r['model']:<26}{r['madds'] / 1e6:>8.1f}M"
        for rt in runtimes:
            first, *again = r[rt]
            line += f"{first.median_ms:>12.2f} ({first.p10_ms:.2f}-{first.p90_ms:.2f})".rjust(30)
            ratio = statistics.median(a.median_ms for a in again) / first.median_ms if again else float("nan")
            line += f"{ratio:>8.2f}"
        line += f"{r[runtimes[0]][0].median_ms / (r['madds'] / 1e8):>26.2f}"
        print(line)


