"""`mfsearch latency --profile`: where the time goes, per part of each model and runtime,
beside the part's share of the MAdds; `--json` keeps the records, `--from-json` reprints them.

The ms columns are the plain median (timed as `mfsearch latency` times it, models
interleaved) split in the profile's proportions, since a profiler slows what it measures;
the profiled totals are printed below each model to show by how much (mfsearch.profile)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..common import UsageError, one_line
from ..latency import Timing, check_runtime, host
from ..models import get_config, list_models
from ..models.parts import PARTS
from ..profile import ProfileRecord, profile_table


def run(args: argparse.Namespace) -> int:
    try:
        records = _records(args)
    except (UsageError, KeyError, ValueError) as exc:
        print(f"{args.prog}: error: {one_line(exc)}", file=sys.stderr)
        return 2
    print_profile(records)
    if args.json and not args.from_json:
        Path(args.json).write_text(json.dumps([r.to_dict() for r in records], indent=1))
    return 0


def _records(args: argparse.Namespace) -> list[ProfileRecord]:
    """Read from --from-json, or profiled now (after every argument is checked)."""
    if args.plot:
        raise UsageError("--plot draws the latency table; --profile prints its own table (keep it with --json)")
    if args.from_json:
        return records_from_json(Path(args.from_json))
    models = args.models or list_models("mobile_former")
    for rt in args.runtimes:
        check_runtime(rt)
    for m in models:
        get_config(m)
    if args.threads < 1 or args.runs < 1:
        raise UsageError("--threads and --runs must be at least 1")
    print(f"host {host()}; batch 1, {args.threads} thread(s), each model at its own resolution, 1000 classes; "
          f"{args.runs} profiled runs per model after 10 warm-up", flush=True)
    return profile_table(models, args.runtimes, args.threads, Timing(min_seconds=args.min_seconds), args.runs)


def records_from_json(path: Path) -> list[ProfileRecord]:
    try:
        records = [ProfileRecord(**d) for d in json.loads(Path(path).read_text())]
    except (OSError, ValueError, TypeError) as exc:
        raise UsageError(f"{path} is not a profile file written by --profile --json ({one_line(exc)})") from None
    if not records:
        raise UsageError(f"{path} holds no profile records")
    return records


def _shown(recs: list[ProfileRecord]) -> list[str]:
    """The parts a model has (time or MAdds), and `other` always: it says what went unattributed."""
    return [p for p in PARTS if p == "other" or any(r.madds_share.get(p) or r.share.get(p, 0) >= 5e-4 for r in recs)]


def print_profile(records: list[ProfileRecord]) -> None:
    runtimes = list(dict.fromkeys(r.runtime for r in records))
    by_model: dict[str, dict[str, ProfileRecord]] = {}
    for r in records:
        by_model.setdefault(r.model, {})[r.runtime] = r
    print("ms: the plain (un-profiled) median split in the profile's shares; %: share of the profiled time")
    print(f"{'model':<24}{'part':<18}" + "".join(f"{rt + ' ms':>16}{'%':>7}" for rt in runtimes) + f"{'MAdds %':>9}")
    for model, recs in by_model.items():
        first = next(iter(recs.values()))
        for i, part in enumerate(_shown(list(recs.values()))):
            line = f"{model if i == 0 else '':<24}{part:<18}"
            for rt in runtimes:
                r = recs.get(rt)
                ms = r.split_ms.get(part) if r and r.split_ms else (r.parts_ms[part] if r else None)
                line += f"{ms:>16.3f}{100 * r.share[part]:>6.1f}%" if r else f"{'':>23}"
            print(line + f"{100 * first.madds_share.get(part, 0.0):>8.1f}%")
        _print_totals(recs, runtimes, first)


def _print_totals(recs: dict[str, ProfileRecord], runtimes: list[str], first: ProfileRecord) -> None:
    measured = f"{'':<24}{'= measured':<18}"
    profiled = f"{'':<24}{'(profiled total)':<18}"
    for rt in runtimes:
        r = recs.get(rt)
        measured += f"{r.measured_ms:>16.3f}{'':>7}" if r and r.measured_ms else f"{'':>23}"
        profiled += f"{r.profile_total_ms:>16.3f}{'':>7}" if r else f"{'':>23}"
    print(measured + f"{first.madds / 1e6:>8.1f}M")
    print(profiled)
