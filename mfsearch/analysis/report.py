"""report.md and the whole analysis in one call: the numbers come from `pareto`, the
pictures from `figures`, and the report only formats them (tests hold it to that)."""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..common import format_madds
from .figures import protocol_text, reference_text, write_figures
from .latency import CAPTIONS as LATENCY_CAPTIONS
from .latency import has_latency, latency_lines, plot_latency, write_front_configs
from .load import AnalysisError, RunSet, latest_run, load_runs
from .markdown import num, table
from .params import CAPTIONS as PARAMS_CAPTIONS
from .params import has_params_axis, params_lines, plot_params
from .pareto import bucket_edges, compare_fronts, hypervolume, pareto_front

CAPTIONS = {
    "pareto": "Left: proxy top-1 against MAdds for every trial (faint; x = pruned), the Mobile-Former front "
              "(step line), the MobileNetV3 baselines trained with the same protocol and their front, and the "
              "budget. Right: published ImageNet numbers, for context only.",
    "progress": "Best complete top-1 and front hypervolume after each trial, per run; dashed: MobileNetV3.",
    "dimensions": "Proxy top-1 against each searched dimension, coloured by MAdds tertile.",
    "edf": "Share of models under each error (FLOP-matched error EDF, Radosavovic et al. 2020).",
    **LATENCY_CAPTIONS,
    **PARAMS_CAPTIONS,
}


@dataclass
class Summary:
    """The numbers the report states."""

    reference: tuple[float, float]
    front: pd.DataFrame
    baseline_front: pd.DataFrame
    hypervolume: float
    baseline_hypervolume: float | None
    comparison: pd.DataFrame | None
    counts: dict[str, int]
    notes: list[str] = field(default_factory=list)


@dataclass
class AnalysisResult:
    out_dir: Path
    files: list[Path]
    summary: Summary
    runs: RunSet


def summarize(rs: RunSet) -> Summary:
    trials, base = rs.trials, rs.baselines
    front, bfront = pareto_front(trials), pareto_front(base)
    comparison = None
    if not front.empty and not bfront.empty:
        done = pd.concat([front["flops"], bfront["flops"]])
        comparison = compare_fronts(front, bfront, bucket_edges(done, rs.budget))
    counts = trials["status"].value_counts().to_dict()
    return Summary(reference=rs.reference, front=front, baseline_front=bfront,
                   hypervolume=hypervolume(front, rs.reference),
                   baseline_hypervolume=hypervolume(bfront, rs.reference) if not base.empty else None,
                   comparison=comparison, counts=counts, notes=_notes(rs, front, counts))


def _notes(rs: RunSet, front: pd.DataFrame, counts: dict[str, int]) -> list[str]:
    """What a reader must know before trusting the figures: the edge cases, in words."""
    n = sum(counts.values())
    notes = []
    if rs.mixed:
        notes.append("runs with different datasets or proxy protocols were merged (--allow-mixed): "
                     "their accuracies are not strictly comparable")
    notes += [f"run {r.name} is {r.status}: its results may be partial" for r in rs.runs
              if r.status not in (None, "finished")]
    if n == 0:
        notes.append("no search trials in these runs yet" + ("" if rs.baselines.empty else ": only baselines to show"))
    elif counts.get("infeasible", 0) == n:
        notes.append(f"all {n} trials were infeasible (over the budget): nothing was trained; "
                     "raise --budget or narrow the space")
    elif front.empty:
        notes.append(f"no trial completed ({_counts_text(counts)}): there is no Mobile-Former front")
    elif n == 1:
        notes.append("a single trial: the front is one point")
    if rs.baselines.empty:
        notes.append("no MobileNetV3 baselines (searched with --no-baselines, or none fits the budget): "
                     "no family comparison")
    return notes


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{counts[s]} {s}" for s in ("complete", "pruned", "infeasible", "failed") if counts.get(s))


def _box_share(hv: float, reference: tuple[float, float]) -> float:
    """Hypervolume as a share of the box [0, x_ref] x [y_ref, 100 %]: comparable across budgets."""
    return 100.0 * hv / (reference[0] * (100.0 - reference[1]))


def _confirmed_lines(rs: RunSet) -> list[str]:
    """What each run's top-k confirmation chose (best.json), when it ran one."""
    out = []
    for run in rs.runs:
        try:
            best = json.loads((run.path / "best.json").read_text())
        except (OSError, ValueError):
            continue
        c = best.get("confirmed")
        if c:
            out.append(f"- {run.name}: trial {best['trial_id']} chosen by its mean over seeds "
                       f"{', '.join(map(str, c['seeds']))}: {c['top1_mean']:.2f} ± {c['top1_std']:.2f} % "
                       f"({', '.join(f'{v:.2f}' for v in c['top1'])})")
    return ["", "Top-k confirmation (best.json):", ""] + out if out else []


def render_report(rs: RunSet, s: Summary, figures: dict[str, list[Path]], out_dir: Path) -> str:
    x_ref, y_ref = s.reference
    ref = f"reference point ({format_madds(x_ref)} MAdds, {y_ref:g} %)"
    names = ", ".join(r.name for r in rs.runs)
    lines = [f"# Analysis: {names}", "",
             f"Proxy protocol: {protocol_text(rs)}. Generated {dt.datetime.now():%Y-%m-%d %H:%M} by analyze.py.",
             f"Trials: {_counts_text(s.counts) or 'none'}.", "",
             f"Hypervolume convention: area dominated by a front (MAdds minimised, top-1 maximised) up to the "
             f"fixed {ref}: x_ref is the budget (the largest, for merged runs), y_ref is 0 % top-1. "
             f"Units: MAdds (M) x top-1 (%); 'share' divides by the box [0, x_ref] x [y_ref, 100 %].", ""]
    if s.notes:
        lines += ["**Notes**", ""] + [f"- {n}" for n in s.notes] + [""]
    lines += ["## Headline", ""]
    head = []
    if not s.front.empty:
        b = s.front.iloc[-1]
        head.append([f"best Mobile-Former ({b['summary']})", f"{b['flops'] / 1e6:.1f}", num(b["params"] / 1e6, ".2f"),
                     f"{b['final_top1']:.2f}"])
    if not s.baseline_front.empty:
        b = s.baseline_front.iloc[-1]
        head.append([f"best MobileNetV3 ({b['summary']})", f"{b['flops'] / 1e6:.1f}", num(b["params"] / 1e6, ".2f"),
                     f"{b['final_top1']:.2f}"])
    lines += table(["model", "MAdds (M)", "params (M)", "proxy top-1 (%)"], head) if head else \
        ["No complete model to report."]
    lines += _confirmed_lines(rs)
    lines += ["", "## Hypervolume", ""]
    hv_rows = [["Mobile-Former", num(s.hypervolume / 1e6, ".1f"), num(_box_share(s.hypervolume, s.reference), ".2f"),
                str(len(s.front)), ref]]
    if s.baseline_hypervolume is not None:
        hv_rows.append(["MobileNetV3", num(s.baseline_hypervolume / 1e6, ".1f"),
                        num(_box_share(s.baseline_hypervolume, s.reference), ".2f"), str(len(s.baseline_front)), ref])
    lines += table(["front", "hypervolume (M x %)", "share of box (%)", "points", "reference"], hv_rows)
    lines += ["", "## Figures", ""]
    for name, paths in figures.items():
        png = paths[0].relative_to(out_dir).as_posix()
        lines += [f"![{name}]({png})", "", f"*{CAPTIONS[name]}* ([SVG]({paths[1].relative_to(out_dir).as_posix()}))",
                  ""]
    lines += ["## Mobile-Former Pareto set (proxy, complete trials)", "",
              f"Non-dominated trials, by MAdds; hypervolume {ref}.", ""]
    lines += table(["#", "run", "trial", "config", "MAdds (M)", "params (M)", "top-1 (%)"],
                    [[str(i), r["run"], str(r["trial_id"]), r["summary"], f"{r['flops'] / 1e6:.1f}",
                      num(r["params"] / 1e6, ".2f"), f"{r['final_top1']:.2f}"]
                     for i, (_, r) in enumerate(s.front.iterrows(), 1)]) if not s.front.empty else ["Empty."]
    lines += ["", "## MobileNetV3 baselines (same protocol)", ""]
    base = rs.baselines.sort_values("flops")
    on_front = set(s.baseline_front.index)
    lines += table(["model", "MAdds (M)", "params (M)", "top-1 (%)", "status", "on front"],
                    [[str(r["trial_id"]), f"{r['flops'] / 1e6:.1f}", num(r["params"] / 1e6, ".2f"),
                      num(r["final_top1"], ".2f"), r["status"], "yes" if i in on_front else ""]
                     for i, r in base.iterrows()]) if not base.empty else ["None in these runs."]
    lines += ["", "## Mobile-Former vs MobileNetV3 per MAdds bucket", ""]
    if s.comparison is None:
        lines.append("Needs a complete trial and a complete baseline.")
    else:
        lines += [f"Buckets (lo, hi] in MAdds (M), inner edges at the tertiles of both fronts' MAdds; "
                  f"hypervolume {ref}. Gain: the best Mobile-Former in the bucket against the best MobileNetV3 "
                  f"with no more MAdds (n/a: none that small). Saving: the best MobileNetV3 in the bucket against "
                  f"the fewest MAdds at which the Mobile-Former front reaches its top-1 (n/a: never).", ""]
        lines += table(["bucket (M)", "best Mobile-Former", "MobileNetV3 at <= its MAdds", "top-1 gain (pp)",
                         "best MobileNetV3", "Mobile-Former MAdds to match", "MAdds saving"],
                        [_comparison_row(r) for _, r in s.comparison.iterrows()])
    if has_latency(rs):
        lines += latency_lines(rs)
    if has_params_axis(rs):
        lines += params_lines(rs)
    lines += ["", "## Run settings", ""]
    lines += table(["run", "folder", "status", "started", "dataset", "backend", "budget", "seed", "protocol",
                     "versions", "git"], [_settings_row(r) for r in rs.runs])
    return "\n".join(lines) + "\n"


def _comparison_row(r: pd.Series) -> list[str]:
    a = f"{r['a_x'] / 1e6:.1f} M, {r['a_y']:.2f} %" if np.isfinite(r["a_x"]) else "none"
    b = f"{r['b_x'] / 1e6:.1f} M, {r['b_y']:.2f} %" if np.isfinite(r["b_x"]) else "none"
    saving = "n/a"
    if np.isfinite(r["flops_saving"]):
        saving = f"{r['flops_saving'] / 1e6:+.1f} M ({r['flops_saving_pct']:+.0f} %)"
    return [f"({r['lo'] / 1e6:g}, {r['hi'] / 1e6:g}]", a, num(r["b_y_at_a"], ".2f"), num(r["top1_gain"], "+.2f"),
            b, num(r["a_x_at_b"] / 1e6, ".1f"), saving]


def _settings_row(r) -> list[str]:
    protocol = ", ".join(f"{k}={v}" for k, v in sorted(r.protocol.items()))
    versions = ", ".join(f"{k} {r.versions[k]}" for k in ("mfsearch", "torch", "optuna", "ray") if k in r.versions)
    return [r.name, str(r.path), str(r.status), str(r.started), r.dataset, r.backend, format_madds(r.budget),
            str(r.seed),
            protocol, versions, (r.git_commit or "")[:10]]


def headline(rs: RunSet, s: Summary) -> str:
    """A few lines for the terminal."""
    lines = [f"{len(rs.runs)} run(s): {', '.join(r.name for r in rs.runs)}; trials: {_counts_text(s.counts) or 'none'}"]
    if not s.front.empty:
        b = s.front.iloc[-1]
        lines.append(f"best Mobile-Former: {b['final_top1']:.2f} % at {format_madds(b['flops'])} MAdds "
                     f"({b['summary']}); "
                     f"front of {len(s.front)}")
    if not s.baseline_front.empty:
        b = s.baseline_front.iloc[-1]
        lines.append(f"best MobileNetV3:   {b['final_top1']:.2f} % at {format_madds(b['flops'])} MAdds "
                     f"({b['trial_id']})")
    hv = f"hypervolume: Mobile-Former {s.hypervolume / 1e6:.1f}"
    if s.baseline_hypervolume is not None:
        hv += f", MobileNetV3 {s.baseline_hypervolume / 1e6:.1f}"
    lines.append(hv + f" (M x %; {reference_text(rs)})")
    lines += [f"note: {n}" for n in s.notes]
    return "\n".join(lines)


def default_out(paths: list[Path]) -> Path:
    """<run>/analysis for one run; analysis-<time> next to the first run for several."""
    if len(paths) == 1:
        return paths[0] / "analysis"
    return paths[0].parent / f"analysis-{dt.datetime.now():%Y%m%d-%H%M%S}"


def analyze(paths: Iterable[Path | str] = (), out: Path | str | None = None, allow_mixed: bool = False,
            runs_root: Path | str = "runs", latency_box: float | None = None) -> AnalysisResult:
    """Load runs (default: the latest under runs_root), write every figure and report.md;
    `latency_box` (ms) sets the latency hypervolume's reference, to compare with another report."""
    paths = [Path(p) for p in paths] or [latest_run(runs_root)]
    rs = load_runs(paths, allow_mixed=allow_mixed)
    rs.latency_box = latency_box
    out_dir = Path(out) if out else default_out(paths)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise AnalysisError(f"cannot write to {out_dir}: {exc.strerror or exc}") from None
    summary = summarize(rs)
    figures = write_figures(rs, out_dir)
    if has_latency(rs):
        figures.update(plot_latency(rs, out_dir))
    if has_params_axis(rs):
        figures.update(plot_params(rs, out_dir))
    report = out_dir / "report.md"
    report.write_text(render_report(rs, summary, figures, out_dir))
    files = [report] + [p for ps in figures.values() for p in ps] + write_front_configs(rs, out_dir)
    return AnalysisResult(out_dir=out_dir, files=files, summary=summary, runs=rs)

