"""Measured inference latency: `measure_latency(name_or_config, runtime, batch, threads)`,
`compare_latency([...])` (models timed interleaved, so machine noise hits all alike) and

    python -m mfsearch.latency [--models ...] [--runtimes onnxruntime torch] [--threads 1]
                               [--plot FILE] [--json FILE]

A runtime is one class (`OnnxRuntimeRuntime`, `TorchRuntime`) registered in RUNTIMES: it
turns a model and an input into a function that runs one inference. Timing: fixed
threads, batch and input, `warmup` untimed runs, then rounds of one untimed and `burst`
timed runs per model until both `min_runs` and `min_seconds` are reached (capped at
`max_runs`); the record holds the median and
the 10th/90th percentiles. Records are cached on disk by (config, runtime, threads,
batch, resolution, host), so a search never measures one architecture twice.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .common import OneLineParser, UsageError, one_line
from .export import export_onnx
from .flops import estimate_flops
from .models import create_model, get_config, list_models, published_top1

CACHE_DIR = Path(os.environ.get("MFSEARCH_CACHE", Path.home() / ".cache" / "mfsearch")) / "latency"


def host() -> str:
    """The CPU this runs on (model name and logical cores): part of every cache key."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name} x{os.cpu_count()}"


class Runtime:
    """How one inference runs; subclasses set `name` and implement `prepare` and `versions`."""
    name = ""

    def prepare(self, model: nn.Module, x: torch.Tensor, threads: int) -> Callable[[], None]:
        raise NotImplementedError

    def versions(self) -> dict[str, str]:
        raise NotImplementedError


class TorchRuntime(Runtime):
    """Eager PyTorch, eval mode, inference_mode, channels_last (the faster layout on CPU)."""
    name = "torch"

    def prepare(self, model, x, threads):
        model = model.eval().to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)

        def run() -> None:
            previous = torch.get_num_threads()
            torch.set_num_threads(threads)
            try:
                with torch.inference_mode():
                    model(x)
            finally:
                torch.set_num_threads(previous)
        return run

    def versions(self):
        return {"torch": torch.__version__}


class OnnxRuntimeRuntime(Runtime):
    """The model exported once to ONNX, run by ONNX Runtime's CPU provider with all graph
    optimisations, `threads` intra-op threads and one inter-op thread."""
    name = "onnxruntime"

    def prepare(self, model, x, threads):
        import onnxruntime as ort  # loaded by the runtime that needs it, not by importing mfsearch
        folder = Path(tempfile.mkdtemp(prefix="mfsearch-onnx-"))
        path = export_onnx(model, folder / "model.onnx", resolution=x.shape[-1], dynamic_batch=False, check=False)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: x.numpy()}
        return lambda: session.run(None, feed)

    def versions(self):
        import onnxruntime as ort
        return {"onnxruntime": ort.__version__, "torch": torch.__version__}


RUNTIMES: dict[str, Runtime] = {r.name: r for r in (OnnxRuntimeRuntime(), TorchRuntime())}


@dataclass(frozen=True)
class LatencyRecord:
    model: str
    runtime: str
    median_ms: float
    p10_ms: float
    p90_ms: float
    runs: int
    warmup: int
    threads: int
    batch: int
    resolution: int
    host: str
    versions: dict

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Timing:
    warmup: int = 10
    min_runs: int = 30
    min_seconds: float = 1.0
    max_runs: int = 500
    burst: int = 5          # timed runs of one model in a row before the next model's turn


def check_runtime(runtime: str) -> Runtime:
    if runtime not in RUNTIMES:
        raise UsageError(f"unknown latency runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    return RUNTIMES[runtime]


def cache_key(config: Any, runtime: str, threads: int, batch: int, resolution: int) -> str:
    payload = json.dumps({"config": config.to_dict(), "runtime": runtime, "threads": threads, "batch": batch,
                          "resolution": resolution, "host": host(), "versions": RUNTIMES[runtime].versions()},
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def _label(target: Any, config: Any) -> str:
    return target if isinstance(target, str) and not target.endswith(".json") else config.family


def measure_latency(target: Any, runtime: str = "onnxruntime", batch: int = 1, threads: int = 1,
                    resolution: int | None = None, timing: Timing = Timing(), cache: bool = True) -> LatencyRecord:
    """Latency of one inference of a registered name or config (1000 classes), cached."""
    return compare_latency([target], runtime, batch, threads, resolution, timing, cache)[0]


def compare_latency(targets: list[Any], runtime: str = "onnxruntime", batch: int = 1, threads: int = 1,
                    resolution: int | None = None, timing: Timing = Timing(), cache: bool = True,
                    log: Callable[[str], None] | None = None) -> list[LatencyRecord]:
    """Several models timed in interleaved rounds (a short burst of each per round, see
    `_interleaved`); cached ones are read, not timed again."""
    rt = check_runtime(runtime)
    if batch < 1 or threads < 1:
        raise UsageError(f"latency batch and threads must be at least 1, got {batch} and {threads}")
    configs = [get_config(t) for t in targets]
    res = [resolution or c.resolution for c in configs]
    keys = [cache_key(c, runtime, threads, batch, r) for c, r in zip(configs, res)]
    out: list[LatencyRecord | None] = [_read(k) if cache else None for k in keys]
    todo = [i for i, r in enumerate(out) if r is None]
    if todo:
        fns = {}
        for i in todo:
            if log:
                log(f"latency: preparing {_label(targets[i], configs[i])} for {runtime}")
            x = torch.randn(batch, 3, res[i], res[i], generator=torch.Generator().manual_seed(0))
            fns[i] = rt.prepare(create_model(configs[i]), x, threads)
        times = _interleaved(fns, timing)
        for i in todo:
            t = np.asarray(times[i]) * 1000
            out[i] = LatencyRecord(_label(targets[i], configs[i]), runtime, round(float(np.median(t)), 4),
                                   round(float(np.percentile(t, 10)), 4), round(float(np.percentile(t, 90)), 4),
                                   len(t), timing.warmup, threads, batch, res[i], host(), rt.versions())
            if cache:
                _write(keys[i], out[i])
    return out


def _interleaved(fns: dict[int, Callable[[], None]], timing: Timing) -> dict[int, list[float]]:
    """Rounds over the models; in each, a model gets one untimed run (its weights back in the
    caches the others evicted) and then `burst` timed ones. Timed one run at a time in
    rotation, every model would be measured cold, from memory, not as it runs when deployed
    (docs: the README's latency section)."""
    for fn in fns.values():
        for _ in range(timing.warmup):
            fn()
    times: dict[int, list[float]] = {i: [] for i in fns}
    start = time.perf_counter()
    while True:
        n = len(next(iter(times.values())))
        for i, fn in fns.items():
            fn()
            for _ in range(min(timing.burst, timing.max_runs - n)):
                t = time.perf_counter()
                fn()
                times[i].append(time.perf_counter() - t)
        n = len(next(iter(times.values())))
        if n >= timing.max_runs or (n >= timing.min_runs and time.perf_counter() - start >= timing.min_seconds):
            return times


def _read(key: str) -> LatencyRecord | None:
    path = CACHE_DIR / f"{key}.json"
    try:
        return LatencyRecord(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _write(key: str, record: LatencyRecord) -> None:
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tmp = CACHE_DIR / f"{key}.json.tmp{os.getpid()}"
    tmp.write_text(json.dumps(record.to_dict()))
    tmp.replace(CACHE_DIR / f"{key}.json")


def parse_latency(text: str | None) -> float | None:
    """'12ms', '12', '0.012s' -> milliseconds; None stays None."""
    if text is None:
        return None
    t = str(text).strip().lower()
    scale = 1000.0 if t.endswith("s") and not t.endswith("ms") else 1.0
    try:
        value = float(t[:-2] if t.endswith("ms") else t[:-1] if t.endswith("s") else t) * scale
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise UsageError(f"--latency-budget {text!r} is not a positive latency; write e.g. 12ms, 12 or 0.012s")
    return value


def table(models: list[str], runtimes: list[str], threads: int, timing: Timing, repeats: int = 2,
          log: Callable[[str], None] | None = print) -> list[dict]:
    """Every model under every runtime, measured `repeats` times (uncached, interleaved);
    the first measurement is the one reported, the others say how far a repeat agrees."""
    rows = {m: {"model": m, "madds": estimate_flops(m), "family": get_config(m).family} for m in models}
    for rt in runtimes:
        for r in range(repeats):
            if log:
                log(f"{rt}: pass {r + 1}/{repeats} over {len(models)} models")
            for rec in compare_latency(models, rt, 1, threads, timing=timing, cache=False):
                rows[rec.model].setdefault(rt, []).append(rec)
    return list(rows.values())


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


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="python -m mfsearch.latency", description=__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=list_models(), help="registered names (default: all 14)")
    p.add_argument("--runtimes", nargs="+", default=list(RUNTIMES), help=f"{', '.join(RUNTIMES)} (default both)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=2, help="independent passes (agreement column; default 2)")
    p.add_argument("--min-seconds", type=float, default=1.0, help="timed seconds per model and pass at least")
    p.add_argument("--plot", help="write latency against MAdds per family to this PNG")
    p.add_argument("--json", help="write every record to this JSON file")
    p.add_argument("--from-json", help="print the table (and --plot) from a file --json wrote, measuring nothing")
    args = p.parse_args(argv)
    try:
        for rt in args.runtimes:
            check_runtime(rt)
        for m in args.models:
            get_config(m)
        if args.threads < 1 or args.repeats < 1:
            raise UsageError("--threads and --repeats must be at least 1")
        if args.from_json:
            rows, args.runtimes = rows_from_json(Path(args.from_json))
            first = rows[0][args.runtimes[0]][0]
            print(f"from {args.from_json}: host {first.host}; batch {first.batch}, {first.threads} thread(s), "
                  f"{len(rows[0][args.runtimes[0]])} passes")
            args.json = None
        else:
            print(f"host {host()}; batch 1, {args.threads} thread(s), each model at its own resolution, "
                  f"1000 classes; models interleaved; {args.repeats} passes", flush=True)
            rows = table(args.models, args.runtimes, args.threads, Timing(min_seconds=args.min_seconds),
                         args.repeats)
    except (UsageError, KeyError, ValueError) as exc:
        print(f"python -m mfsearch.latency: error: {one_line(exc)}", file=sys.stderr)
        return 2
    _print_table(rows, args.runtimes)
    if args.json:
        Path(args.json).write_text(json.dumps([{**{k: v for k, v in r.items() if k not in args.runtimes},
                                                **{rt: [x.to_dict() for x in r[rt]] for rt in args.runtimes}}
                                               for r in rows], indent=1))
    if args.plot:
        _plot(rows, args.runtimes, Path(args.plot))
    return 0


FAMILY_STYLE = {"mobile_former": ("Mobile-Former", "#d62728", "o"), "mobilenet_v3": ("MobileNetV3", "#1f77b4", "s")}


def _plot(rows: list[dict], runtimes: list[str], path: Path) -> None:
    """Median latency (p10-p90 bars) against MAdds per runtime, repeat agreement, and published
    ImageNet top-1 against the first runtime's latency (the equal-accuracy comparison)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # only for --plot: measuring needs no plotting library loaded
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    fig, axes = plt.subplots(1, len(runtimes) + 2, figsize=(4.6 * (len(runtimes) + 2), 4.0), squeeze=False)
    axes = axes[0]
    for ax, rt in zip(axes, runtimes):
        for fam, (label, color, marker) in FAMILY_STYLE.items():
            sel = [r for r in rows if r["family"] == fam]
            if sel:
                med = [r[rt][0].median_ms for r in sel]
                err = [[m - r[rt][0].p10_ms for m, r in zip(med, sel)], [r[rt][0].p90_ms - m for m, r in zip(med, sel)]]
                ax.errorbar([r["madds"] / 1e6 for r in sel], med, yerr=err, fmt=marker, color=color, capsize=3,
                            label=label)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("MAdds (M), own resolution")
        ax.set_ylabel(f"latency (ms), batch 1, {rows[0][rt][0].threads} thread(s)")
        ax.set_title(f"{rt}: median, p10-p90", fontsize=10)
        ax.legend(fontsize=8)
    ax = axes[len(runtimes)]
    for k, rt in enumerate(runtimes):
        ratios = [[a.median_ms / r[rt][0].median_ms for a in r[rt][1:]] for r in rows]
        for i, rs in enumerate(ratios):
            ax.scatter([i + 0.15 * (k - 0.5)] * len(rs), rs, s=14, color=f"C{k + 2}", label=rt if i == 0 else None)
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_xticks(range(len(rows)), [r["model"].replace("mobile_former_", "MF-").replace("mobilenet_v3_", "V3-")
                                     for r in rows], rotation=70, fontsize=7)
    ax.set_ylabel("repeat median / first median")
    ax.set_title("repeat agreement (each later pass)", fontsize=10)
    ax.legend(fontsize=8)
    ax = axes[-1]
    rt = runtimes[0]
    for fam, (label, color, marker) in FAMILY_STYLE.items():
        sel = [(r[rt][0].median_ms, published_top1(r["model"])) for r in rows if r["family"] == fam]
        sel = sorted((x, y) for x, y in sel if y is not None)
        if sel:
            ax.plot(*zip(*sel), marker=marker, color=color, label=label)
    ax.set_xlabel(f"{rt} latency (ms)")
    ax.set_ylabel("published ImageNet top-1 (%)")
    ax.set_title("accuracy against measured latency", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    plt.close(fig)


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


if __name__ == "__main__":
    sys.exit(main())
