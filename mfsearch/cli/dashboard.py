"""`mfsearch dashboard RUN`: optuna-dashboard on a search run's own Optuna storage (the
run's `study.journal`, or the PostgreSQL URL its run.json records), on loopback by default."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..common import UsageError, one_line
from ..records.runjson import folder_kind, read_run_json


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="a search run folder (runs/NAME) made with the Optuna backend")
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080)")


def run_storage(folder: Path):
    """The Optuna storage a search run wrote its study to, or UsageError saying why there is none."""
    if folder_kind(folder) != "search":
        raise UsageError(f"{folder} is not a search run folder (no run.json with search settings)")
    settings = read_run_json(folder)["settings"]
    if settings.get("storage"):
        return settings["storage"]
    if settings.get("backend") == "ray":
        raise UsageError(f"{folder} is a Ray run: its trials live in Ray Tune, not in an Optuna storage")
    journal = folder / "study.journal"
    if not journal.is_file():
        raise UsageError(f"{folder} has no study.journal yet (no Optuna trial has been stored)")
    import optuna  # loaded for this command only
    from optuna.storages.journal import JournalFileBackend
    return optuna.storages.JournalStorage(JournalFileBackend(str(journal.resolve())))


def run(args: argparse.Namespace) -> int:
    try:
        if not 0 < args.port < 65536:
            raise UsageError(f"--port must be in 1..65535, got {args.port}")
        storage = run_storage(Path(args.run))
    except (UsageError, OSError, ValueError) as exc:
        print(f"{args.prog}: error: {one_line(exc)}", file=sys.stderr)
        return 2
    import optuna_dashboard  # a web server: loaded for this command only

    print(f"optuna-dashboard for {args.run} on http://{args.host}:{args.port}/ (Ctrl-C stops it)", flush=True)
    try:
        optuna_dashboard.run_server(storage, host=args.host, port=args.port)
    except KeyboardInterrupt:
        pass
    return 0
