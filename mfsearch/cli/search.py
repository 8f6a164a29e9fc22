"""`mfsearch search` and search.py: a search, or a study file (`--experiment`). It sits above
both layers (studies run searches), so neither imports the other's command line."""
from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
import warnings

from spaces import SpaceError

from ..common import OneLineParser, UsageError, one_line, parse_budget, parse_duration, parse_params
from ..data import DATASETS, DEFAULT_DATASET, DEFAULT_TEST_SPLIT, DataError
from ..latency import RUNTIMES, parse_latency
from ..search.run import run_search
from ..search.settings import (
    CONFIRM_SEEDS,
    CONFIRM_TOP,
    COSTS,
    DEFAULT_BAND,
    DEFAULT_TRIALS,
    FINAL_LENGTH,
    SAVE_WEIGHTS,
    SearchSettings,
    default_protocol,
    space_setting,
)
from ..studies import load_study, run_study
from ..train import AUGMENTS, REGULARIZATION, ProxyProtocol

DESCRIPTION = "FLOP-budgeted Mobile-Former search with short-proxy training."
EXAMPLES = """examples:
  python search.py --budget 150M                      built-in dataset, default protocol
  python search.py --budget 300M --dataset cifar10 --data-root ../shared/data/cifar10 --trials 40
  python search.py --budget 0.15G --objective pareto --backend ray --workers 2
  python search.py --budget 150M --name my-run        rerun the same command to resume 'my-run'
  python search.py --budget 150M --storage postgresql://user:pw@db/optuna --name shared-study
  python search.py --experiment experiments/tokens.yaml --size full
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = default_protocol()
    p.add_argument("--budget", help="hard cap in multiply-adds at each candidate's own "
                   "resolution with a 1000-class head: 150M, 150e6 or 0.15G")
    p.add_argument("--band", type=float, help=f"train only candidates in [BAND x budget, budget], width-fitting "
                   f"each proposal into it (default {DEFAULT_BAND} for --objective accuracy; 0: any candidate "
                   "under the budget, as before; a pareto search keeps the whole front)")
    p.add_argument("--backend", default="optuna", help="optuna (default) or ray")
    p.add_argument("--sampler", default="tpe", help="tpe (default: Optuna's TPE with the budget as a constraint) "
                   "or random (uniform draws over the same space and band: the baseline a search must beat)")
    p.add_argument("--objective", default="accuracy", help="accuracy: best proxy top-1 under the budget "
                   "(with early stopping); pareto: top-1 vs MAdds front")
    p.add_argument("--param-budget", help="hard cap on parameters with a 1000-class head, checked before training "
                   "like the MAdds budget (with a band, a candidate over it is narrowed within the band): 5M, 5e6 "
                   "or 5000000")
    p.add_argument("--baseline-widths", type=int, default=0, metavar="N",
                   help="without a band (--objective pareto, or --band 0): MobileNetV3 Large and Small fitted at N "
                   "costs spread up to the budget instead of the registered widths (default 0: registered)")
    p.add_argument("--latency-budget", help="hard cap on measured latency per image (batch 1), checked before "
                   "training like the MAdds budget: 12ms, 12 or 0.012s")
    p.add_argument("--latency-runtime", default="onnxruntime",
                   help=f"{' or '.join(RUNTIMES)}: what latency is measured in (default onnxruntime)")
    p.add_argument("--latency-threads", type=int, default=1, help="threads latency is measured with (default 1)")
    p.add_argument("--cost", default="flops", help=f"{' or '.join(COSTS)}: the cost axis of --objective pareto "
                   "(default flops; latency measures every candidate; params counts them with a 1000-class head)")
    p.add_argument("--trials", type=int, default=DEFAULT_TRIALS,
                   help=f"trials to finish, infeasible proposals included (default {DEFAULT_TRIALS})")
    p.add_argument("--timeout", help="stop starting trials after this wall time: 30m, 2h, 90s")
    p.add_argument("--workers", type=int, default=1, help="concurrent trials, or with --experiment a study's "
                   "trainings side by side (default 1)")
    p.add_argument("--threads", type=int, help="torch threads per worker (default: cores / workers)")
    p.add_argument("--dataset", default=DEFAULT_DATASET, help=f"{', '.join(DATASETS)} (default {DEFAULT_DATASET}, "
                   "built in; synthetic is built in too)")
    p.add_argument("--data-root", help="dataset location (cifar10/100: torchvision's folder or an ImageFolder "
                   "tree; imagefolder: a folder with train/ and val/ or test/, or one folder per class)")
    p.add_argument("--test-split", type=float, default=DEFAULT_TEST_SPLIT,
                   help="share of every class held out for testing when an imagefolder tree has no split "
                        f"(default {DEFAULT_TEST_SPLIT}; seeded by --seed)")
    p.add_argument("--download", action="store_true", help="allow torchvision to download CIFAR")
    p.add_argument("--epochs", type=int, default=d.epochs, help=f"proxy epochs per trial (default {d.epochs})")
    p.add_argument("--data-fraction", type=float, default=d.data_fraction,
                   help=f"stratified share of the training set each trial uses (default {d.data_fraction})")
    p.add_argument("--test-fraction", type=float, default=d.test_fraction,
                   help=f"stratified share of the test split used for validation (default {d.test_fraction})")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--base-resolution", type=int, default=d.base_resolution,
                   help="px a 224-px design trains at; others scale with their resolution "
                        "(default: the dataset's stored size)")
    p.add_argument("--min-resolution", type=int, default=d.min_resolution,
                   help=f"no candidate trains below this many px (default {d.min_resolution})")
    p.add_argument("--augment", default=d.augment, help=f"{' or '.join(AUGMENTS)} (default {d.augment})")
    p.add_argument("--regularization", default=d.regularization,
                   help=f"{' or '.join(REGULARIZATION)}: dropout as the model ships it, or 0 "
                        f"(default {d.regularization})")
    p.add_argument("--confirm-top", type=int, default=CONFIRM_TOP,
                   help="after the search, retrain the best K complete trials on the finalists' rung and pick "
                        f"the best by the mean of those runs (default {CONFIRM_TOP}; 0: off)")
    p.add_argument("--confirm-seeds", type=int, default=CONFIRM_SEEDS,
                   help=f"trainings per finalist (default {CONFIRM_SEEDS})")
    p.add_argument("--final-length", type=float, default=FINAL_LENGTH,
                   help=f"the finalists train on this many times a trial's images (default {FINAL_LENGTH:g}; "
                        "1: the trial protocol with new seeds)")
    p.add_argument("--min-steps", type=int, default=d.min_steps,
                   help=f"at least this many optimiser steps per trial: a small dataset trains for more epochs "
                        f"(default {d.min_steps}; 0: no floor)")
    p.add_argument("--save-weights", help=f"{' | '.join(SAVE_WEIGHTS)}: keep the trained weights of the best "
                   "complete trial as best.pt (search default), of every complete trial (weights/; a study: one per "
                   "variant, seed and protocol), or none (study default); load with mfsearch.load_checkpoint")
    p.add_argument("--space", help="a registered Mobile-Former space (mobile_former, the default; mobile_former_cpu: "
                   "per-stage dynamic ReLU, bridges and tokens, and the head's expansion) or a YAML/JSON file "
                   "narrowing or widening the one its `space:` key names")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", help="run name (default: budget and time); reuse a name to resume that run")
    p.add_argument("--out", default="runs", help="folder holding run folders (default runs/)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto: what trials (or a study's "
                   "trainings) train on; latency is always measured on the CPU")
    p.add_argument("--storage", help="Optuna storage URL (default: a journal file in the run folder); "
                   "postgresql://... shares a study across machines")
    p.add_argument("--address", help="Ray cluster to join (auto or HOST:PORT); with --backend ray")
    p.add_argument("--no-baselines", action="store_true", help="skip the MobileNetV3 baselines")
    p.add_argument("--experiment", help="run a study file instead of a search (experiments/NAME.yaml)")
    p.add_argument("--size", default="smoke", help="study size from the file's `sizes` (default smoke)")


def settings_from_args(args: argparse.Namespace) -> SearchSettings:
    budget = parse_budget(args.budget)
    space, space_file = space_setting(args.space)
    try:
        protocol = ProxyProtocol(epochs=args.epochs, data_fraction=args.data_fraction, batch_size=args.batch_size,
                                 lr=args.lr, test_fraction=args.test_fraction, base_resolution=args.base_resolution,
                                 min_resolution=args.min_resolution, augment=args.augment,
                                 regularization=args.regularization, min_steps=args.min_steps)
    except ValueError as exc:
        raise UsageError(f"proxy protocol: {exc}") from None
    name = args.name or f"{budget / 1e6:g}M-{dt.datetime.now():%Y%m%d-%H%M%S}"
    return SearchSettings(
        budget=budget, backend=args.backend, objective=args.objective, trials=args.trials,
        workers=args.workers, threads=args.threads, dataset=args.dataset,
        data_root=os.path.abspath(args.data_root) if args.data_root else None, download=args.download,
        test_split=args.test_split,
        protocol=protocol, space=space, space_file=space_file, seed=args.seed, name=name, out=args.out,
        device=args.device, storage=args.storage, address=args.address, baselines=not args.no_baselines,
        confirm_top=args.confirm_top, confirm_seeds=args.confirm_seeds, save_weights=args.save_weights or "best",
        latency_budget=parse_latency(args.latency_budget), latency_runtime=args.latency_runtime,
        latency_threads=args.latency_threads, cost=args.cost, band=args.band, final_length=args.final_length,
        sampler=args.sampler, param_budget=parse_params(args.param_budget),
        baseline_widths=args.baseline_widths)


def run(args: argparse.Namespace) -> int:
    warnings.filterwarnings("ignore")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    try:
        if not args.budget and not args.experiment:
            raise UsageError("the following arguments are required: --budget (or --experiment FILE)")
        if args.experiment:
            if args.save_weights not in (None, "all", "none"):
                raise UsageError("a study keeps the weights of every run (--save-weights all) or none (default)")
            run_study(load_study(args.experiment, args.size), out=args.out, save_weights=args.save_weights == "all",
                      workers=args.workers, threads=args.threads, device=args.device)
            return 0
        timeout = parse_duration(args.timeout)
        settings = settings_from_args(args)
        run_search(settings, deadline=None if timeout is None else time.time() + timeout)
    except (UsageError, DataError, SpaceError) as exc:
        print(f"{args.prog}: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{args.prog}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    return 0


def main(argv: list[str] | None = None) -> int:
    """search.py: the same flags and code as `mfsearch search`."""
    p = OneLineParser(prog="search.py", description=DESCRIPTION, epilog=EXAMPLES,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    args = p.parse_args(argv)
    args.prog = p.prog
    return run(args)
