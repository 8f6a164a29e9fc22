"""The measuring subcommands: `mfsearch export`, `flops`, `bench`, `data` and `space`. Each is
an `add_*_arguments(parser)` and a `run_*(args) -> exit code`; the library does the work."""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

import torch

from spaces import MobileFormerSpace, SpaceError, load_space

from ..bench import benchmark
from ..common import UsageError, one_line, parse_budget
from ..data import DEFAULT_TEST_SPLIT, DataError, load_dataset
from ..data.folders import write_image_tree
from ..data.measure import loader_throughput, synthetic_baselines
from ..export import TOLERANCE, export_onnx, load_target
from ..flops import estimate_flops, flops_table
from ..models import MobileFormerConfig, list_models, preset_config

EXPORT = """ONNX export of a run's best architecture (with best.pt's trained weights when the run kept them,
at the class count it was trained with), a checkpoint, a config JSON or a registered name. Every export is
checked with onnx.checker and run once in ONNX Runtime against PyTorch (eval mode)."""
BENCH = """Train-step throughput: the models train (forward, backward, AdamW step) on random data in one
process, steps alternating between them so machine noise hits all alike; the median images/s of the timed
steps is reported with the ratio to the last model."""
SPACE = "What a space holds and how fast it samples: its FLOP range, the closed form's time per config, and the " \
        "rate of feasible samples under a budget with the share of proposals rejected."


def _fail(args: argparse.Namespace, exc: BaseException | str) -> int:
    print(f"{args.prog}: error: {one_line(exc)}", file=sys.stderr)
    return 2


def add_export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", help="a run folder, a checkpoint (.pt), a config JSON or a registered model name")
    p.add_argument("--out", help="output file (default: NAME.onnx in the current folder, or RUN/best.onnx)")
    p.add_argument("--resolution", type=int, help="input size (default: the design's own resolution)")
    p.add_argument("--fixed-batch", action="store_true", help="batch 1 only (default: any batch size)")


def run_export(args: argparse.Namespace) -> int:
    try:
        if args.resolution is not None and not 32 <= args.resolution <= 1024:
            raise UsageError(f"--resolution must be in [32, 1024] px, got {args.resolution}")
        model, what = load_target(args.target)
        out = Path(args.out) if args.out else (Path(args.target) / "best.onnx" if Path(args.target).is_dir()
                                                else Path(Path(args.target).stem + ".onnx"))
        start = time.perf_counter()
        export_onnx(model, out, args.resolution, dynamic_batch=not args.fixed_batch)
    except (UsageError, ValueError, OSError) as exc:
        return _fail(args, exc)
    print(f"exported {what} to {out} in {time.perf_counter() - start:.1f} s "
          f"(checked: onnx.checker, ONNX Runtime within {TOLERANCE:g} of PyTorch)")
    return 0


def add_flops_arguments(p: argparse.ArgumentParser) -> None:
    """No options: the table covers every registered model."""


def run_flops(args: argparse.Namespace) -> int:
    print(flops_table())
    return 0


def add_bench_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", nargs="+", default=["mobile_former_151m", "mobilenet_v3_large_075"])
    p.add_argument("--resolutions", nargs="+", type=int, default=[32, 64])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--no-channels-last", action="store_true")


def run_bench(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    ref = args.models[-1]
    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch}, "
          f"median of {args.steps} interleaved train steps, 10 classes")
    for res in args.resolutions:
        ips = benchmark(args.models, res, args.batch, args.steps, channels_last=not args.no_channels_last)
        for name, v in ips.items():
            ratio = f"  ratio to {ref}: {v / ips[ref]:.2f}" if name != ref else ""
            print(f"{res:>4} px  {name:<26} {v:8.0f} img/s{ratio}")
    return 0


def add_data_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bench", action="store_true", help="BatchLoader images/s at 32 and 64 px")
    p.add_argument("--baselines", action="store_true", help="linear vs small-CNN accuracy on synthetic")
    p.add_argument("--load", metavar="NAME", help="load a dataset and report its shape and load time")
    p.add_argument("--data-root")
    p.add_argument("--cache-dir")
    p.add_argument("--download", action="store_true")
    p.add_argument("--image-size", type=int)
    p.add_argument("--test-split", type=float, default=DEFAULT_TEST_SPLIT,
                   help="share held out for testing by a tree without train/ and val/ or test/")
    p.add_argument("--threads", type=int, default=2, help="torch threads for the measurements")
    p.add_argument("--write-tree", metavar="FOLDER", help="with --load: write --per-class training images of every "
                   "class as FOLDER/<class>/<n>.png, no split (a small photo folder to search on)")
    p.add_argument("--per-class", type=int, default=200, help="images per class for --write-tree (default 200)")


def run_data(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    try:
        if args.load:
            start = time.perf_counter()
            data = load_dataset(args.load, args.data_root, args.download, cache_dir=args.cache_dir,
                                image_size=args.image_size, test_split=args.test_split)
            print(f"{data.name}: train {tuple(data.train_x.shape)}, test {tuple(data.test_x.shape)}, "
                  f"{data.num_classes} classes, loaded in {time.perf_counter() - start:.2f} s")
            if args.write_tree:
                if args.per_class < 1:
                    raise DataError(f"--per-class must be at least 1, got {args.per_class}")
                n = write_image_tree(data, Path(args.write_tree), args.per_class)
                print(f"wrote {n} images ({args.per_class} per class, no split) to {args.write_tree}")
        elif args.write_tree:
            raise DataError("--write-tree takes its images from a dataset: add --load NAME (and --data-root)")
        if args.bench:
            print(f"BatchLoader, batch 128, {args.threads} threads, images/s over one epoch of 20k images")
            for stored, res in ((32, 32), (32, 64), (64, 64), (64, 32)):
                for train, channels_last in ((True, False), (True, True), (False, False)):
                    ips = loader_throughput(res, stored, train=train, channels_last=channels_last)
                    mode = ("train" if train else "eval") + (" channels_last" if channels_last else "")
                    print(f"stored {stored:>3} px -> {res:>3} px  {mode:<19} {ips:9.0f} img/s")
        if args.baselines:
            print(synthetic_baselines())
    except DataError as exc:
        return _fail(args, exc)
    return 0


def add_space_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--budget", default="150M", help="MAdds, e.g. 150M or 150e6 (default 150M)")
    p.add_argument("--space", help="a registered space (e.g. mobile_former_cpu) or a YAML/JSON file narrowing one "
                   "(default: mobile_former)")
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--band", type=float, help="also count what becomes of 2,000 random proposals under the band "
                   "[BAND x budget, budget]: in it as drawn, width-fitted into it, or beyond any width")


def run_space(args: argparse.Namespace) -> int:
    try:
        budget = parse_budget(args.budget)
        space = load_space(args.space) if args.space else MobileFormerSpace()
        if not isinstance(space, MobileFormerSpace):
            raise SpaceError(f"--space {args.space}: this command measures Mobile-Former spaces, not {space.name!r}")
    except (UsageError, SpaceError) as exc:
        return _fail(args, exc)
    rng = random.Random(0)
    lo, hi = space.flops_range()
    print(f"space {space.name}: {len(space.dimensions)} dimensions, {lo / 1e6:.1f}M .. {hi / 1e6:.1f}M MAdds")
    presets = [preset_config(n) for n in list_models(MobileFormerConfig.family)]
    configs = presets + [space.sample(rng) for _ in range(1000)]
    times = []
    for cfg in configs:
        t = time.perf_counter()
        estimate_flops(cfg)
        times.append(time.perf_counter() - t)
    print(f"estimate_flops: median {statistics.median(times) * 1e6:.0f} us, max {max(times) * 1e6:.0f} us "
          f"over {len(configs)} configs")
    start, feasible = time.perf_counter(), 0
    while time.perf_counter() - start < args.seconds:
        space.sample(rng, max_flops=budget)
        feasible += 1
    rate = feasible / (time.perf_counter() - start)
    draws = 2000
    rejected = sum(space.flops(space.decode(space.sample_params(rng))) > budget for _ in range(draws))
    print(f"budget {budget / 1e6:.0f}M: {rate:.0f} feasible samples/s, "
          f"{rejected / draws:.0%} of proposals rejected as over budget")
    if args.band is not None:
        if not 0 < args.band < 1:
            return _fail(args, f"--band must be in (0, 1), got {args.band}")
        y = space.band_yield(budget, args.band, draws)
        print(f"band [{args.band:.0%}, 100%] of {budget / 1e6:.0f}M over {draws} proposals: {y['in_band']} in it as "
              f"drawn, {y['fitted_down']} fitted down and {y['fitted_up']} fitted up by width, {y['unfittable']} "
              f"beyond any width; rejection trains {y['in_band'] / draws:.0%}, fitting "
              f"{(draws - y['unfittable']) / draws:.0%}")
    return 0
