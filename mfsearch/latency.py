"""Measured inference latency: `measure_latency(name_or_config, runtime, batch, threads)`,
`compare_latency([...])` (models timed interleaved, so machine noise hits all alike) and
`table(...)`, every model under every runtime (the command: `mfsearch latency`).

A runtime is one class (`OnnxRuntimeRuntime`, `TorchRuntime`) registered in RUNTIMES: it
turns a model and an input into a function that runs one inference. Timing: fixed
threads, batch and input, `warmup` untimed runs, then rounds of one untimed and `burst`
timed runs per model until both `min_runs` and `min_seconds` are reached (capped at
`max_runs`); the record holds the median and
the 10th/90th percentiles. Records are cached on disk by (config, runtime, threads,
batch, resolution, host), so a search never measures one architecture twice.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .common import UsageError
from .export import export_onnx
from .flops import estimate_flops
from .models import create_model, get_config

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
        # a fixed batch of 1 where that is what runs; a batch above 1 needs the free batch dimension
        path = export_onnx(model, folder / "model.onnx", resolution=x.shape[-1], dynamic_batch=x.shape[0] > 1,
                           check=False)
        session = ort.InferenceSession(str(path), self.options(threads), providers=["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: x.numpy()}
        return lambda: session.run(None, feed)

    @staticmethod
    def options(threads: int) -> Any:
        """The session settings every ONNX Runtime timing uses (the profiler adds to them)."""
        import onnxruntime as ort
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return opts

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
            # by position: a record's label is a config file's family, not the name it was asked by
            for m, rec in zip(models, compare_latency(models, rt, 1, threads, timing=timing, cache=False)):
                rows[m].setdefault(rt, []).append(rec)
    return list(rows.values())
