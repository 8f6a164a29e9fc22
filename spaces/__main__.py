"""`python -m spaces [--budget 150M] [--space FILE]`: what a space holds and how fast it samples.

Prints the space's FLOP range, the closed-form FLOP count's time per config, and the
rate of feasible samples under a budget with the share of proposals rejected.
"""
from __future__ import annotations

import random
import statistics
import time

import mfsearch
from mfsearch.common import OneLineParser

from .mobile_former import MobileFormerSpace


def main() -> None:
    p = OneLineParser(prog="python -m spaces", description=__doc__)
    p.add_argument("--budget", type=float, default=150e6, help="MAdds, e.g. 150e6")
    p.add_argument("--space", help="YAML/JSON narrowing the default space")
    p.add_argument("--seconds", type=float, default=3.0)
    args = p.parse_args()
    space = MobileFormerSpace.from_file(args.space) if args.space else MobileFormerSpace()
    rng = random.Random(0)
    lo, hi = space.flops_range()
    print(f"space {space.name}: {len(space.dimensions)} dimensions, {lo / 1e6:.1f}M .. {hi / 1e6:.1f}M MAdds")
    configs = [mfsearch.preset_config(n) for n in mfsearch.list_models("mobile_former")]
    configs += [space.sample(rng) for _ in range(1000)]
    times = []
    for cfg in configs:
        t = time.perf_counter()
        mfsearch.estimate_flops(cfg)
        times.append(time.perf_counter() - t)
    print(f"estimate_flops: median {statistics.median(times) * 1e6:.0f} us, max {max(times) * 1e6:.0f} us "
          f"over {len(configs)} configs")
    start, feasible = time.perf_counter(), 0
    while time.perf_counter() - start < args.seconds:
        space.sample(rng, max_flops=args.budget)
        feasible += 1
    rate = feasible / (time.perf_counter() - start)
    draws = 2000
    rejected = sum(space.flops(space.decode(space.sample_params(rng))) > args.budget for _ in range(draws))
    print(f"budget {args.budget / 1e6:.0f}M: {rate:.0f} feasible samples/s, "
          f"{rejected / draws:.0%} of proposals rejected as over budget")


if __name__ == "__main__":
    main()
