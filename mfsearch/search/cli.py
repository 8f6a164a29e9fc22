"""Command line of search.py (kept here so tests can reach every line of it)."""
from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
import warnings

from .errors import UsageError

EXAMPLES = """examples:
  python search.py --budget 150M                      built-in dataset, ~10 min on 2 cores
  python search.py --budget 300M --dataset cifar10 --data-root ../shared/data/cifar10 --trials 40
  python search.py --budget 0.15G --objective pareto --backend ray --workers 2
  python search.py --budget 150M --name my-run        rerun the same command to resume 'my-run'
  python search.py --budget 150M --storage postgresql://user:pw@db/optuna --name shared-study
  python search.py --experiment experiments/tokens.yaml --size full
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, no usage dump
        print(f"search.py: error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="search.py", description="FLOP-budgeted Mobile-Former search with short-proxy training.",
                epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget", help="hard cap in multiply-adds at each candidate's own "
                   "resolution with a 1000-class head: 150M, 150e6 or 0.15G")
    p.add_argument("--backend", default="optuna", help="optuna (default) or ray")
    p.add_argument("--objective", default="accuracy", help="accuracy: best proxy top-1 under the budget "
                   "(with early stopping); pareto: top-1 vs MAdds front")
    p.add_argument("--trials", type=int, default=20, help="trials to finish (default 20)")
    p.add_argument("--timeout", help="stop starting trials after this wall time: 30m, 2h, 90s")
    p.add_argument("--workers", type=int, default=1, help="concurrent trials (default 1)")
    p.add_argument("--threads", type=int, help="torch threads per worker (default: cores / workers)")
    p.add_argument("--dataset", default="synthetic", help="synthetic (built in, default), cifar10, cifar100, "
                   "imagefolder")
    p.add_argument("--data-root", help="dataset location (cifar10/100: torchvision's folder or an ImageFolder "
                   "tree; imagefolder: a folder with train/ and val/ or test/)")
    p.add_argument("--download", action="store_true", help="allow torchvision to download CIFAR")
    p.add_argument("--epochs", type=int, default=3, help="proxy epochs per trial (default 3)")
    p.add_argument("--data-fraction", type=float, default=0.5,
                   help="stratified share of the training set each trial uses (default 0.5)")
    p.add_argument("--test-fraction", type=float, default=0.25,
                   help="stratified share of the test split used for validation (default 0.25)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--space", help="YAML/JSON file narrowing or widening the default space")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", help="run name (default: budget and time); reuse a name to resume that run")
    p.add_argument("--out", default="runs", help="folder holding run folders (default runs/)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto")
    p.add_argument("--storage", help="Optuna storage URL (default: a journal file in the run folder); "
                   "postgresql://... shares a study across machines")
    p.add_argument("--address", help="Ray cluster to join (auto or HOST:PORT); with --backend ray")
    p.add_argument("--no-baselines", action="store_true", help="skip the MobileNetV3 baselines")
    p.add_argument("--experiment", help="run a study file instead of a search (experiments/NAME.yaml)")
    p.add_argument("--size", default="smoke", help="study size from the file's `sizes` (default smoke)")
    return p


def settings_from_args(args: argparse.Namespace):
    from ..train import ProxyProtocol
    from .parse import parse_budget
    from .settings import SearchSettings
    budget = parse_budget(args.budget)
    space, space_file = None, None
    if args.space:
        from spaces import MobileFormerSpace
        space = MobileFormerSpace.from_file(args.space).to_dict()
        space_file = os.path.abspath(args.space)
    try:
        protocol = ProxyProtocol(epochs=args.epochs, data_fraction=args.data_fraction, batch_size=args.batch_size,
                                 lr=args.lr, test_fraction=args.test_fraction)
    except ValueError as exc:
        raise UsageError(f"proxy protocol: {exc}") from None
    name = args.name or f"{budget / 1e6:g}M-{dt.datetime.now():%Y%m%d-%H%M%S}"
    return SearchSettings(
        budget=budget, backend=args.backend, objective=args.objective, trials=args.trials,
        timeout=None, workers=args.workers, threads=args.threads, dataset=args.dataset,
        data_root=os.path.abspath(args.data_root) if args.data_root else None, download=args.download,
        protocol=protocol, space=space, space_file=space_file, seed=args.seed, name=name, out=args.out,
        device=args.device, storage=args.storage, address=args.address, baselines=not args.no_baselines)


def main(argv: list[str] | None = None) -> int:
    from ..data import DataError
    from spaces import SpaceError
    from .parse import parse_duration

    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.budget and not args.experiment:
        parser.error("the following arguments are required: --budget (or --experiment FILE)")
    warnings.filterwarnings("ignore")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    try:
        if args.experiment:
            from ..experiments import load_study, run_study
            run_study(load_study(args.experiment, args.size), out=args.out)
            return 0
        timeout = parse_duration(args.timeout)
        settings = settings_from_args(args)
        from .run import run_search
        run_search(settings, deadline=None if timeout is None else time.time() + timeout)
    except (UsageError, DataError, SpaceError) as exc:
        print(f"search.py: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("search.py: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    return 0
