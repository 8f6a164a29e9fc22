"""The figures people look at: Pareto fronts, search progress, per-dimension trends
and error EDFs, each saved as PNG (150 dpi) and SVG.

Sized to be read where a README or paper shows them: fonts of 9 pt and more at the
saved size, units on every axis, and a footer on every figure that states the
hypervolume reference point and the trials that could not be plotted.
"""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import patheffects
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from ..common import format_madds
from ..models import FAMILIES, compared, families
from .load import RunSet, fmt_width
from .pareto import design_space_edfs, hypervolume, pareto_front, progress

DPI = 150
RC = {"font.size": 10, "axes.titlesize": 10.5, "axes.labelsize": 10, "xtick.labelsize": 9,
      "ytick.labelsize": 9, "legend.fontsize": 9, "legend.title_fontsize": 9, "svg.fonttype": "none"}
PALETTE = sns.color_palette("deep")
# a search's trials are its candidate family's, its baselines the baseline family's
CANDIDATE, BASELINE = families("candidate")[0], families("baseline")[0]
RUN_COLORS = [PALETTE[i] for i in (0, 2, 4, 3, 5, 6, 7, 8, 9)]   # orange stays the baselines'
DIMENSIONS = [("tokens", "tokens"), ("token_dim", "token dim"), ("width_mult", "width multiplier"),
              ("depth", "depth (blocks)"), ("expansion", "expansion (mean e1)"), ("resolution", "resolution (px)")]
MIN_EDF_MODELS = 5
HALO = [patheffects.withStroke(linewidth=2.5, foreground="white")]   # labels stay legible over lines


def family_style(name: str) -> tuple[str, str, str]:
    """A family's label, colour and marker from its descriptor; rows of a family this process
    has not registered are drawn grey under their own name."""
    f = FAMILIES.get(name)
    return (f.label, f.color, f.marker) if f else (name, "0.5", "o")


def reference_text(rs: RunSet) -> str:
    x_ref, y_ref = rs.reference
    return f"hypervolume reference: x = {format_madds(x_ref)} MAdds (budget), y = {y_ref:g} % top-1"


def unplotted(rs: RunSet) -> str:
    """Trials without an accuracy (infeasible, failed), which accuracy axes cannot show."""
    t = rs.trials
    counts = t[t["final_top1"].isna()]["status"].value_counts()
    return ", ".join(f"{n} {s}" for s, n in counts.items())


def protocol_text(rs: RunSet) -> str:
    if rs.mixed:
        return "mixed protocols, --allow-mixed"
    p = json.loads(rs.df["protocol"].iloc[0]) if not rs.df.empty else rs.runs[0].protocol
    parts = [rs.runs[0].dataset]
    if "epochs" in p:
        parts.append(f"{p['epochs']} ep")
    if "data_fraction" in p:
        parts.append(f"{p['data_fraction']:.0%} of train")
    return ", ".join(parts)


def _footer(fig: plt.Figure, rs: RunSet) -> float:
    """Writes the footer, wrapped to the figure's width; returns the height it takes (figure fraction)."""
    missing = unplotted(rs)
    text = reference_text(rs) + (f"; not plotted (no accuracy): {missing}" if missing else "")
    lines = textwrap.wrap(text, int(fig.get_figwidth() * 14))
    fig.text(0.5, 0.01, "\n".join(lines), ha="center", va="bottom", fontsize=9, color="0.35")
    return 0.015 + len(lines) * 12.5 / (fig.get_figheight() * 72)


def log_mega_axis(ax: plt.Axes) -> None:
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 3.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def save(fig: plt.Figure, out_dir: Path, name: str, bottom: float, top: float = 1.0, svg: bool = True) -> list[Path]:
    """PNG (and SVG unless the figure is mostly pixels, where SVG only adds size)."""
    fig.tight_layout(rect=(0, bottom, 1, top))
    paths = [out_dir / f"{name}.png"] + ([out_dir / f"{name}.svg"] if svg else [])
    fig.savefig(paths[0], dpi=DPI)
    if svg:
        fig.savefig(paths[1])
    plt.close(fig)
    return paths


def _step(ax: plt.Axes, front: pd.DataFrame, x_end: float, **kw) -> None:
    """A front as the step curve it defines, held flat up to x_end (the budget)."""
    if front.empty:
        return
    xs = np.append(front["flops"].to_numpy() / 1e6, max(x_end / 1e6, front["flops"].max() / 1e6))
    ys = np.append(front["final_top1"].to_numpy(), front["final_top1"].iloc[-1])
    ax.plot(xs, ys, drawstyle="steps-post", **kw)


def _mnv3_label(name: str) -> str:
    """'mobilenet_v3_large_075' -> 'L0.75'."""
    parts = name.split("_")
    if len(parts) < 4 or not parts[-1].isdigit():
        return name
    return f"{parts[-2][0].upper()}{fmt_width(int(parts[-1]) / 100)}"


def _run_colors(rs: RunSet) -> dict[str, tuple]:
    runs = list(dict.fromkeys(rs.df["run"]))
    return {r: RUN_COLORS[i % len(RUN_COLORS)] for i, r in enumerate(runs)}


def plot_pareto(rs: RunSet, out_dir: Path) -> list[Path]:
    """Proxy top-1 vs MAdds for this search (left) and published ImageNet points (right)."""
    fig, (ax, pub) = plt.subplots(1, 2, figsize=(11, 5.4), gridspec_kw={"width_ratios": [1.55, 1]})
    trials, base = rs.trials, rs.baselines
    x_ref = rs.reference[0]
    colors = _run_colors(rs)
    several = trials["run"].nunique() > 1
    for run, color in colors.items():
        t = trials[(trials["run"] == run) & trials["final_top1"].notna()]
        for status, marker in (("complete", "o"), ("pruned", "x")):
            s = t[t["status"] == status]
            if not s.empty:
                label = f"{run}: {status} ({len(s)})" if several else f"trial, {status} ({len(s)})"
                ax.scatter(s["flops"] / 1e6, s["final_top1"], marker=marker, s=30, color=color, alpha=0.45,
                           linewidths=1.2 if marker == "x" else 0, label=label)
    front = pareto_front(trials)
    _step(ax, front, x_ref, color=CANDIDATE.color, lw=2, label=f"{CANDIDATE.label} front ({len(front)})")
    if not base.empty:
        done = base[base["final_top1"].notna()]
        ax.scatter(done["flops"] / 1e6, done["final_top1"], marker=BASELINE.marker, s=34, color=BASELINE.color,
                   zorder=3, edgecolor="white", linewidth=0.6, label=f"{BASELINE.label} ({len(done)})")
        _step(ax, pareto_front(base), x_ref, color=BASELINE.color, lw=1.5, ls="--", label=f"{BASELINE.label} front")
        for _, row in done.iterrows():
            ax.annotate(_mnv3_label(row["trial_id"]), (row["flops"] / 1e6, row["final_top1"]),
                        xytext=(5, -11), textcoords="offset points", fontsize=9, color=BASELINE.color,
                        path_effects=HALO)
    for budget in sorted({r.budget for r in rs.runs}):
        ax.axvline(budget / 1e6, color="0.35", ls=(0, (4, 3)), lw=1)
        ax.annotate(f"budget {format_madds(budget)}", (budget / 1e6, 0), xycoords=("data", "axes fraction"),
                    xytext=(-3, 4), textcoords="offset points", rotation=90, ha="right", va="bottom",
                    fontsize=9, color="0.35", path_effects=HALO)
    ys = pd.concat([trials["final_top1"], base["final_top1"]]).dropna()
    if not ys.empty:
        lo, hi = ys.min(), ys.max()
        pad = max(hi - lo, 1.0)
        ax.set_ylim(lo - 0.08 * pad, hi + 0.3 * pad)   # room above the best point for its label
    shown = pd.concat([trials, base])
    xs = shown.loc[shown["final_top1"].notna(), "flops"].dropna()
    x_lo = min(xs.min(), x_ref) / 1.3 if not xs.empty else x_ref / 10
    x_hi = max(xs.max(), x_ref) * 1.25 if not xs.empty else x_ref * 1.25
    ax.set_xlim(x_lo / 1e6, x_hi / 1e6)
    log_mega_axis(ax)
    if not front.empty:
        _label_best(ax, front.iloc[-1], np.log(front["flops"].iloc[-1] / x_lo) / np.log(x_hi / x_lo))
    ax.set_xlabel("MAdds (M), log scale")
    ax.set_ylabel("proxy top-1 (%)")
    title = f"This search, proxy training ({protocol_text(rs)})"
    if front.empty:
        title += f"\nno complete {CANDIDATE.label} trial: no front"
    if base.empty:
        title += f"\nno {BASELINE.label} baselines in these runs"
    ax.set_title(title)
    missing = unplotted(rs)
    handles, labels = ax.get_legend_handles_labels()
    if missing:
        handles.append(Line2D([], [], ls="none"))
        labels.append(f"not plotted: {missing}")
    ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=3, frameon=False,
              columnspacing=1.2, handletextpad=0.4)   # below the axes: never over the points
    draw_published(pub)
    return save(fig, out_dir, "pareto", _footer(fig, rs))


def _label_best(ax: plt.Axes, best: pd.Series, where: float) -> None:
    """Circle and name the best architecture; the label goes to the side with room
    (`where`: the point's position across the axis, 0 to 1)."""
    bx = best["flops"] / 1e6
    ax.scatter([bx], [best["final_top1"]], s=70, facecolor="none", edgecolor="black", lw=1.2, zorder=4)
    right = where < 0.5
    ax.annotate(f"best: {best['summary']}\n{best['final_top1']:.2f} % at {format_madds(best['flops'])}",
                (bx, best["final_top1"]), xytext=(10 if right else -10, 8), textcoords="offset points",
                ha="left" if right else "right", va="bottom", fontsize=9,
                bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "0.7", "alpha": 0.9})


def draw_published(ax: plt.Axes) -> None:
    """ImageNet numbers as the papers report them: context, never on the proxy axes."""
    mf = sorted((p["flops_M"], p["top1"]) for p in CANDIDATE.published().values())
    ax.plot(*zip(*mf), "o-", color=CANDIDATE.color, ms=5, label="Mobile-Former (Chen et al. 2022)")
    mn = sorted((p["flops_M"], p["top1"], name) for name, p in BASELINE.published().items())
    for variant in ("small", "large"):
        pts = [(x, y) for x, y, n in mn if f"_{variant}_" in n]
        ax.plot(*zip(*pts), "s--", color=BASELINE.color, ms=5,
                label="MobileNetV3 (Howard et al. 2019)" if variant == "small" else None)
    for x, y, name in mn:
        ax.annotate(_mnv3_label(name), (x, y), xytext=(5, -11), textcoords="offset points", fontsize=9,
                    color=BASELINE.color, path_effects=HALO)
    log_mega_axis(ax)
    ax.set_xlabel("MAdds (M), log scale")
    ax.set_ylabel("ImageNet top-1 (%)")
    ax.set_title("ImageNet (published), not this search")
    ax.legend(loc="upper left")


def plot_progress(rs: RunSet, out_dir: Path) -> list[Path]:
    """Best top-1 so far and hypervolume after each trial, one line per run."""
    fig, (acc, hv) = plt.subplots(1, 2, figsize=(10, 4))
    colors = _run_colors(rs)
    trials = rs.trials
    for run, color in colors.items():
        t = trials[trials["run"] == run]
        if t.empty:
            continue
        p = progress(t, rs.reference)
        label = f"{run} ({t['backend'].iloc[0]})"
        style = {"color": color, "marker": "o", "ms": 3.5, "lw": 1.6, "drawstyle": "steps-post"}
        acc.plot(p["trial"], p["best_top1"], label=label, **style)
        hv.plot(p["trial"], p["hypervolume"] / 1e6, label=label, **style)
    base = rs.baselines
    if not base.empty and base["final_top1"].notna().any():
        acc.axhline(base["final_top1"].max(), color=BASELINE.color, ls="--", lw=1.2,
                    label=f"best {BASELINE.label}")
        hv.axhline(hypervolume(base, rs.reference) / 1e6, color=BASELINE.color, ls="--", lw=1.2,
                   label=f"{BASELINE.label} front")
    done = trials[(trials["status"] == "complete") & trials["final_top1"].notna()]
    note = "\nno search trials in these runs" if trials.empty else "\nno complete trial yet" if done.empty else ""
    longest = max(trials["order"].max() if not trials.empty else 1, 1)
    for ax, title, ylabel in ((acc, "Best complete top-1 so far", "proxy top-1 (%)"),
                              (hv, f"Hypervolume so far (ref. {format_madds(rs.reference[0])}, 0 %)",
                               "hypervolume (MAdds M x top-1 %)")):
        ax.set_xlabel("trial number (search order)")
        ax.set_ylabel(ylabel)
        ax.set_title(title + note)
        ax.set_xlim(0.5, longest + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="lower right")
    hv.set_ylim(bottom=0)
    return save(fig, out_dir, "progress", _footer(fig, rs))


def flop_bands(flops: pd.Series, n: int = 3) -> pd.Series:
    """FLOP bands by quantiles (tertiles by default), labelled '29-60M'; fewer bands when
    there are fewer distinct values."""
    edges = np.unique(np.quantile(flops, np.linspace(0, 1, n + 1))) if len(flops) else np.array([])
    if edges.size < 2:
        return pd.Series([f"{format_madds(v)}" for v in flops], index=flops.index, dtype="object")
    idx = np.clip(np.searchsorted(edges, flops, side="right") - 1, 0, edges.size - 2)
    labels = [f"{edges[i] / 1e6:.3g}-{format_madds(edges[i + 1])}" for i in range(edges.size - 1)]
    return pd.Series([labels[i] for i in idx], index=flops.index, dtype="object")


def plot_dimensions(rs: RunSet, out_dir: Path) -> list[Path]:
    """Top-1 against each searched dimension, coloured by FLOP band: which dimension
    matters once compute is held roughly fixed."""
    done = rs.trials[(rs.trials["status"] == "complete") & rs.trials["final_top1"].notna()]
    done = done[done["family"] == CANDIDATE.name]   # the searched dimensions are the candidate's
    fig, axes = plt.subplots(2, 3, figsize=(10.5, 6.4), sharey=True)
    bands = flop_bands(done["flops"])
    order = list(dict.fromkeys(bands[done["flops"].sort_values().index]))   # bands from cheap to costly
    colors = dict(zip(order, sns.color_palette("viridis", max(len(order), 1))))
    rng = np.random.default_rng(0)
    for ax, (col, label) in zip(axes.flat, DIMENSIONS):
        vals = done[col].astype(float)
        values = np.unique(vals.dropna())
        step = np.min(np.diff(values)) if values.size > 1 else 1.0
        # discrete dimensions: a small horizontal jitter keeps equal values apart
        jitter = rng.uniform(-0.15, 0.15, len(vals)) * step * (values.size < 12)
        for band in order:
            m = (bands == band).to_numpy()
            ax.scatter(vals[m] + jitter[m], done["final_top1"][m], s=28,
                       color=colors[band], alpha=0.8, edgecolor="white", linewidth=0.4, label=band)
        ax.set_xlabel(label)
        if values.size and values.size <= 8 and np.allclose(values, np.round(values)):
            ax.set_xticks(values)
        if done.empty:
            ax.text(0.5, 0.5, "no complete trial", transform=ax.transAxes, ha="center", va="center",
                    color="0.4")
            ax.tick_params(labelbottom=False, labelleft=False)
    for ax in axes[:, 0]:
        ax.set_ylabel("proxy top-1 (%)")
    title = f"Proxy top-1 per searched dimension, {len(done)} complete {CANDIDATE.label} trials ({protocol_text(rs)})"
    fig.suptitle(title, fontsize=10.5)
    if order:
        fig.legend(*axes.flat[0].get_legend_handles_labels(), title="MAdds band", loc="upper right",
                   ncol=len(order), bbox_to_anchor=(0.99, 0.955), frameon=False)
    return save(fig, out_dir, "dimensions", _footer(fig, rs), 0.93 if order else 0.96)


def plot_edf(rs: RunSet, out_dir: Path) -> list[Path]:
    """Design-space error EDFs, FLOP-matched (Radosavovic et al. 2020): the share of
    models under each error, a view of the whole sampled space, not just its best."""
    cmp = design_space_edfs(rs.df)
    fig, ax = plt.subplots(figsize=(6, 4.4))
    for edf in cmp.edfs:
        label, color, _ = family_style(edf.family)
        xs = np.concatenate([[edf.errors[0]], edf.errors]) if edf.n else []
        ys = np.concatenate([[0.0], edf.cdf]) if edf.n else []
        ax.plot(xs, ys, drawstyle="steps-post", color=color, lw=2, label=f"{label} (n={edf.n})")
    if cmp.flop_range:
        title = f"Error EDF, FLOP-matched over {cmp.flop_range[0] / 1e6:.3g}-{format_madds(cmp.flop_range[1])} MAdds"
    elif len(cmp.edfs) > 1:
        title = "Error EDF, unmatched: the families share no FLOP range"
    else:
        title = "Error EDF"
    notes = [f"only {e.n} {family_style(e.family)[0]} model{'s' if e.n != 1 else ''}"
             for e in cmp.edfs if e.n < MIN_EDF_MODELS]
    present = {e.family for e in cmp.edfs}
    notes += [f"no complete {f.label} model" for f in compared() if f.name not in present]
    if notes:
        title += "\n" + textwrap.fill("; ".join(notes) + ": read with care", int(fig.get_figwidth() * 11))
    ax.set_title(title)
    ax.set_xlabel("proxy top-1 error (%)")
    ax.set_ylabel("fraction of models with error < e")
    ax.set_ylim(0, 1.02)
    if cmp.edfs:
        ax.legend(loc="lower right")
    return save(fig, out_dir, "edf", _footer(fig, rs))


def write_figures(rs: RunSet, out_dir: Path) -> dict[str, list[Path]]:
    """Every figure, as {name: [png, svg]}."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with sns.axes_style("whitegrid"), plt.rc_context(RC):
        return {"pareto": plot_pareto(rs, out_dir), "progress": plot_progress(rs, out_dir),
                "dimensions": plot_dimensions(rs, out_dir), "edf": plot_edf(rs, out_dir)}

