"""Where the time goes: `profile_latency(name_or_config, runtime, batch, threads)` splits one
inference's time by part of the model (models.parts: stem_head, mobile, dyrelu,
mobile_to_former, former, former_to_mobile; se for MobileNetV3; other for what no rule
claims), beside each part's share of the MAdds (flops.estimate_parts); `profile_table`
does it for several models and runtimes (the command: `mfsearch latency --profile`).

- onnxruntime: the model is exported with module paths in its node names
  (export.name_nodes_by_scope) and run with ONNX Runtime's own profiler. Each kernel event
  names a node of the optimised graph (saved beside the profile); nodes that ONNX Runtime's
  fusions renamed keep the first node's name as a prefix, its blocked-layout convs are
  named after the original tensor they compute, its layout copies (ReorderInput/Output)
  go with the conv they serve, and the other nodes it created itself (reshapes around a
  Gemm, fused normalisations) take the module of the original tensor they produce, else
  of the node that consumes their output, else of the node that produced their input.
  Nodes still without a module count as `other`; the few kernels missing from the saved
  graph (created after it was saved) take the part of the kernel run just before them.
- torch: forward hooks at every module where a part starts switch a clock between parts
  (a stack, so a part's time excludes the parts nested in it); no per-operator events.

Both profilers slow the run: ONNX Runtime's by bookkeeping at every node (2x on a small
model at 64 px), which weighs most on parts made of many small nodes. So the record keeps
the profiled times (`parts_ms`; `profile_total_ms`, counted apart from them) and the
plain, un-profiled median from mfsearch.latency (`measured_ms`), and `split_ms` divides the
measured median in the profile's proportions: read the shares, not the profiled
milliseconds, as the answer.
"""
from __future__ import annotations

import json
import re
import statistics
import tempfile
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from time import perf_counter
from typing import Any

import torch
from torch import nn

from .common import UsageError
from .export import export_onnx, node_scope
from .flops import estimate_parts
from .latency import OnnxRuntimeRuntime, Timing, TorchRuntime, check_runtime, compare_latency, host
from .models import create_model, get_config
from .models.parts import PARTS, module_parts, part_of_path


@dataclass(frozen=True)
class ProfileRecord:
    model: str
    runtime: str
    parts_ms: dict[str, float]      # each part's time in a typical run (`Runs.typical`)
    share: dict[str, float]         # each part's fraction of the parts' sum
    madds_share: dict[str, float]   # each part's fraction of the closed-form MAdds
    madds: int
    profile_total_ms: float         # a typical run's total, taken apart from the parts (`Runs`)
    profile_wall_ms: float          # median wall time of a profiled run (the profiler's own cost included)
    measured_ms: float | None       # the plain median (mfsearch.latency), None when not measured
    split_ms: dict[str, float] = field(default_factory=dict)   # measured_ms in the profile's proportions
    runs: int = 0
    warmup: int = 0
    threads: int = 1
    batch: int = 1
    resolution: int = 224
    method: str = ""
    host: str = ""
    versions: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Runs:
    """What a profiler saw, run by run: ms per part, the run's total counted apart from the
    parts (torch: the forward's wall time; ONNX Runtime: every kernel in the run, mapped or
    not), and the run's wall time with the profiler's own cost."""
    parts: list[dict[str, float]] = field(default_factory=list)
    totals: list[float] = field(default_factory=list)
    walls: list[float] = field(default_factory=list)

    def typical(self) -> tuple[dict[str, float], float]:
        """Each part's mean and the total's mean over the middle half of the runs ranked by
        total. A median per part would not add up: on a busy machine every run is slowed
        somewhere else, so the parts' medians summed to 56% of the median total in
        development; the interquartile mean adds up and drops the slowed runs as a median
        does."""
        order = sorted(range(len(self.totals)), key=self.totals.__getitem__)
        keep = order[len(order) // 4: len(order) - len(order) // 4] or order
        parts = {p: statistics.fmean(self.parts[i].get(p, 0.0) for i in keep) for p in PARTS}
        return parts, statistics.fmean(self.totals[i] for i in keep)


def _record(label: str, runtime: str, runs: Runs, madds: dict[str, int], warmup: int, threads: int, batch: int,
            res: int, method: str, versions: dict) -> ProfileRecord:
    parts, total = runs.typical()
    attributed = sum(parts.values())
    return ProfileRecord(label, runtime, {p: round(v, 4) for p, v in parts.items()},
                         {p: v / attributed for p, v in parts.items()},
                         {p: v / sum(madds.values()) for p, v in madds.items()}, sum(madds.values()),
                         round(total, 4), round(statistics.median(runs.walls), 4), None, {}, len(runs.totals),
                         warmup, threads, batch, res, method, host(), versions)


def with_measured(record: ProfileRecord, measured_ms: float) -> ProfileRecord:
    """The record with the plain median, and that median split in the profile's proportions."""
    return replace(record, measured_ms=measured_ms,
                   split_ms={p: round(s * measured_ms, 4) for p, s in record.share.items()})


# ---- torch: a clock switched by module hooks -------------------------------------------------

class _PartClock:
    """Exclusive time per part: entering a module where a part starts charges the time so far
    to the part on top of the stack and pushes the new one; leaving charges and pops."""

    def __init__(self, model: nn.Module):
        parts = module_parts(model)
        self.stack: list[str] = []
        self.spent: dict[str, float] = defaultdict(float)
        self.last = 0.0
        self.handles = []
        for name, mod in model.named_modules():
            if name == "" or parts[name] != parts[name.rpartition(".")[0]]:
                self.handles.append(mod.register_forward_pre_hook(self._enter(parts[name])))
                self.handles.append(mod.register_forward_hook(self._leave))

    def _charge(self) -> None:
        now = perf_counter()
        if self.stack:
            self.spent[self.stack[-1]] += now - self.last
        self.last = now

    def _enter(self, part: str) -> Callable:
        def hook(module, args):
            self._charge()
            self.stack.append(part)
        return hook

    def _leave(self, module, args, output):
        self._charge()
        self.stack.pop()

    def take(self) -> dict[str, float]:
        """The ms per part since the last take."""
        out, self.spent = {p: v * 1000 for p, v in self.spent.items()}, defaultdict(float)
        return out

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def _profile_torch(model: nn.Module, x: torch.Tensor, threads: int, runs: int, warmup: int) -> tuple[Runs, str]:
    run = TorchRuntime().prepare(model, x, threads)
    clock = _PartClock(model)
    out = Runs()
    try:
        for _ in range(warmup):
            run()
        clock.take()
        for _ in range(runs):
            t = perf_counter()
            run()
            wall = (perf_counter() - t) * 1000
            out.parts.append(clock.take())
            out.totals.append(wall)
            out.walls.append(wall)
    finally:
        clock.remove()
    return out, f"torch forward hooks at {len(clock.handles) // 2} part boundaries"


# ---- ONNX Runtime: its profiler, node names mapped back to modules ---------------------------

# ONNX Runtime's layout copies into and out of its blocked (NCHWc) conv layout: each serves
# the conv it feeds or that fed it, whichever module the tensor on the other side came from
_REORDERS = {"ReorderInput": "consumer", "ReorderOutput": "producer"}


def _graph_scopes(original: Any, optimised: Any, parts: dict[str, str]) -> dict[str, str]:
    """Each node of the optimised graph -> its module path (see the module docstring)."""
    tensor_scope = {}
    for node in original.graph.node:
        scope = node_scope(node)
        if scope is not None:
            tensor_scope.update(dict.fromkeys(node.output, scope))
    consumers, producer = defaultdict(list), {}
    for node in optimised.graph.node:
        for t in node.input:
            consumers[t].append(node)
        producer.update(dict.fromkeys(node.output, node))
    known = {n.name: s for n in optimised.graph.node
             if n.op_type not in _REORDERS and (s := _own_scope(n, tensor_scope, parts)) is not None}
    for node in optimised.graph.node:
        if node.op_type in _REORDERS:
            side = ([c for t in node.output for c in consumers[t]] if _REORDERS[node.op_type] == "consumer"
                    else [producer[t] for t in node.input if t in producer])
            scope = next((known[m.name] for m in side if m.name in known), None)
            if scope is not None:
                known[node.name] = scope
    # '' (the root's own operations, e.g. expanding the tokens) stays '': part `other`
    return {n.name: known[n.name] if n.name in known else _by_neighbours(n, known, consumers, producer) or ""
            for n in optimised.graph.node}


def _own_scope(node: Any, tensor_scope: dict[str, str], parts: dict[str, str]) -> str | None:
    """A node's scope from its own name or outputs: the module prefix it was exported with;
    for a conv the NCHWc transformer rewrote, the original tensor it is named after (its
    outputs may be an activation it absorbed, e.g. dynamic ReLU's Relu); else the original
    tensor it produces (a fusion's last output)."""
    prefix, slash, _ = node.name.partition("/")
    if slash and prefix and re.sub(r"@\d+", "", prefix) in parts:   # '/NAME': the root's or no scope
        return prefix
    if node.name.endswith("_nchwc") and node.name[:-len("_nchwc")] in tensor_scope:
        return tensor_scope[node.name[:-len("_nchwc")]]
    return next((tensor_scope[t] for t in node.output if t in tensor_scope), None)


def _by_neighbours(node: Any, known: dict[str, str], consumers: dict, producer: dict) -> str | None:
    """The scope of the nearest known node downstream (a reorder or reshape before a kernel
    belongs to that kernel), else upstream; None when neither direction reaches one."""
    for step in (lambda n: [c for t in n.output for c in consumers[t]],
                 lambda n: [producer[t] for t in n.input if t in producer]):
        seen, frontier = set(), [node]
        while frontier:
            nxt = []
            for n in frontier:
                for m in step(n):
                    if m.name in known:
                        return known[m.name]
                    if m.name not in seen:
                        seen.add(m.name)
                        nxt.append(m)
            frontier = nxt
    return None


def _runs_from_trace(events: list[dict], node_part: dict[str, str], warmup: int) -> Runs:
    """Per run (ONNX Runtime's `model_run` events, the first `warmup` dropped): ms per part of
    the kernels inside it, all its kernels' ms, and the run's wall time."""
    runs = sorted((e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"),
                  key=lambda e: e["ts"])[warmup:]
    kernels = sorted((e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")),
                     key=lambda e: e["ts"])
    out, i = Runs(), 0
    for r in runs:
        spent: dict[str, float] = defaultdict(float)
        total, part = 0.0, "other"
        while i < len(kernels) and kernels[i]["ts"] < r["ts"]:
            i += 1
        while i < len(kernels) and kernels[i]["ts"] <= r["ts"] + r["dur"]:
            # a node missing from the saved graph (added after saving: a decomposed HardSwish
            # in the head) takes the part of the kernel run before it: execution follows the graph
            part = node_part.get(kernels[i]["name"][:-len("_kernel_time")], part)
            spent[part] += kernels[i]["dur"] / 1000
            total += kernels[i]["dur"] / 1000
            i += 1
        out.parts.append(dict(spent))
        out.totals.append(total)
        out.walls.append(r["dur"] / 1000)
    return out


def _profile_onnxruntime(model: nn.Module, x: torch.Tensor, threads: int, runs: int, warmup: int) \
        -> tuple[Runs, str]:
    import onnx
    import onnxruntime as ort

    parts = module_parts(model)
    with tempfile.TemporaryDirectory(prefix="mfsearch-profile-") as tmp:
        path = export_onnx(model, Path(tmp) / "model.onnx", resolution=x.shape[-1], dynamic_batch=x.shape[0] > 1,
                           check=False, scope_names=True)
        opts = OnnxRuntimeRuntime.options(threads)
        opts.enable_profiling, opts.profile_file_prefix = True, str(Path(tmp) / "trace")
        opts.optimized_model_filepath = str(Path(tmp) / "optimised.onnx")   # the graph the kernels belong to
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: x.numpy()}
        for _ in range(warmup + runs):
            session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
        scopes = _graph_scopes(onnx.load(str(path)), onnx.load(opts.optimized_model_filepath), parts)
    node_part = {name: part_of_path(scope, parts) if scope else "other" for name, scope in scopes.items()}
    unsaved = {e["name"] for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")
               and e["name"][:-len("_kernel_time")] not in node_part}
    method = (f"onnxruntime profiler, {len(node_part)} nodes mapped by module path, {len(unsaved)} kernels "
              "not in the saved graph placed by execution order")
    return _runs_from_trace(events, node_part, warmup), method


PROFILERS = {"onnxruntime": _profile_onnxruntime, "torch": _profile_torch}


def profile_latency(target: Any, runtime: str = "onnxruntime", batch: int = 1, threads: int = 1,
                    resolution: int | None = None, runs: int = 50, warmup: int = 10, measure: bool = True,
                    timing: Timing = Timing(), cache: bool = True) -> ProfileRecord:
    """Profile one inference of a registered name or config (1000 classes, eval) `runs` times
    after `warmup`; with `measure`, add the plain median (mfsearch.latency, cached unless
    `cache` is False) and split it in the profile's proportions."""
    rt = check_runtime(runtime)
    if batch < 1 or threads < 1 or runs < 1 or warmup < 0:
        raise UsageError(f"profile batch, threads and runs must be at least 1 (got {batch}, {threads}, {runs})")
    cfg = get_config(target)
    res = resolution or cfg.resolution
    x = torch.randn(batch, 3, res, res, generator=torch.Generator().manual_seed(0))
    seen, method = PROFILERS[runtime](create_model(cfg).eval(), x, threads, runs, warmup)
    label = target if isinstance(target, str) and not target.endswith(".json") else cfg.family
    record = _record(label, runtime, seen, estimate_parts(cfg, res), warmup, threads, batch, res,
                     method, rt.versions())
    if measure:
        plain = compare_latency([cfg], runtime, batch, threads, res, timing, cache)[0]
        record = with_measured(record, plain.median_ms)
    return record


def profile_table(models: list[str], runtimes: list[str], threads: int = 1, timing: Timing = Timing(),
                  runs: int = 50, log: Callable[[str], None] | None = print) -> list[ProfileRecord]:
    """Every model under every runtime: the plain medians first (models interleaved, uncached,
    as `mfsearch latency` times them), then one profile per model."""
    out = []
    for rt in runtimes:
        if log:
            log(f"{rt}: plain timing of {len(models)} models, interleaved")
        plain = compare_latency(models, rt, 1, threads, timing=timing, cache=False)
        for m, rec in zip(models, plain):
            if log:
                log(f"{rt}: profiling {m}")
            out.append(with_measured(profile_latency(m, rt, 1, threads, runs=runs, measure=False), rec.median_ms))
    return out
