"""Figures of study folders: per-variant bars, scaling fits, the proxy beside the
published comparison, two protocols' rankings and the calibration's fidelity-cost plot.
Same style and save helper as the search figures."""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, NullFormatter

from ..models import families
from .figures import BASELINE, CANDIDATE, HALO, PALETTE, RC, draw_published, family_style, log_mega_axis, save

if TYPE_CHECKING:  # the statistics module draws with these functions; types only
    from .stats import RankAgreement
    from .studies import PowerLaw


def plot_variants(table: pd.DataFrame, title: str, out_dir: Path, name: str) -> list[Path]:
    protocols = list(dict.fromkeys(table["protocol_name"]))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * table["variant"].nunique() + 2), 4.2))
    width = 0.8 / len(protocols)
    for k, proto in enumerate(protocols):
        t = table[table["protocol_name"] == proto]
        pos = np.arange(len(t)) + (k - (len(protocols) - 1) / 2) * width
        color = None
        if len(protocols) == 1:  # one protocol: colour by family, as in every other figure
            color = [family_style(f)[1] for f in t["family"]]
        ax.bar(pos, t["top1_mean"], width * 0.9, yerr=t["top1_std"], capsize=3, label=proto, alpha=0.85, color=color)
        if k == 0:
            ax.set_xticks(np.arange(len(t)))
            tilt = len(t) > 6 or sum(len(v) for v in t["variant"]) > 60  # labels would touch
            ax.set_xticklabels([f"{v}\n{f / 1e6:.0f}M" for v, f in zip(t["variant"], t["flops"])], fontsize=8,
                               rotation=25 if tilt else 0, ha="right" if tilt else "center")
    lo = (table["top1_mean"] - table["top1_std"]).min()
    ax.set_ylim(max(0.0, lo - 5), (table["top1_mean"] + table["top1_std"]).max() + 3)
    ax.set_ylabel("proxy top-1 (%), mean ± std over seeds")
    ax.set_title(title, fontsize=10)
    if len(protocols) > 1:
        ax.legend(title="protocol", fontsize=8)
    return save(fig, out_dir, name, 0.0)


def plot_scaling(table: pd.DataFrame, fits: list[PowerLaw], title: str, out_dir: Path, name: str) -> list[Path]:
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for fam in families():
        t = table[table["family"] == fam.name]
        if t.empty:
            continue
        color = fam.color
        ax.errorbar(t["flops"] / 1e6, 100 - t["top1_mean"], yerr=t["top1_std"], fmt=fam.marker, color=color,
                    capsize=3, label=fam.label)
        fit = next((f for f in fits if f.family == fam.name), None)
        if fit:
            xs = np.geomspace(t["flops"].min(), t["flops"].max(), 50)
            ax.plot(xs / 1e6, fit.a * xs ** fit.b, "--", color=color, lw=1,
                    label=f"fit: error ∝ MAdds^{fit.b:.3f} [{fit.b_low:.3f}, {fit.b_high:.3f}]")
    log_mega_axis(ax)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.tick_params(axis="y", which="minor", labelsize=8)
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("MAdds (M), log scale")
    ax.set_ylabel("proxy top-1 error (%), log scale")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return save(fig, out_dir, name, 0.0)


def plot_comparison(table: pd.DataFrame, title: str, out_dir: Path, name: str) -> list[Path]:
    """Proxy top-1 against MAdds beside the published ImageNet figure, same axes style."""
    fig, (proxy, paper) = plt.subplots(1, 2, figsize=(11, 4.4))
    groups = [(CANDIDATE.name, CANDIDATE.color, "o-", f"{CANDIDATE.label} presets"),
              ("_small_", BASELINE.color, "s--", f"{BASELINE.label}-Small"),
              ("_large_", BASELINE.color, "s:", f"{BASELINE.label}-Large")]
    for key, color, style, label in groups:
        t = table[table["family"] == key] if key == CANDIDATE.name else table[table["variant"].str.contains(key)]
        if t.empty:
            continue
        t = t.sort_values("flops")
        proxy.errorbar(t["flops"] / 1e6, t["top1_mean"], yerr=t["top1_std"], fmt=style, color=color, ms=5,
                       capsize=3, label=label)
    log_mega_axis(proxy)
    proxy.set_xlabel("MAdds (M), log scale")
    proxy.set_ylabel("proxy top-1 (%), mean ± std over seeds")
    proxy.set_title(title)
    proxy.legend(loc="upper left")
    draw_published(paper)
    paper.set_title("ImageNet (published), not this proxy")
    return save(fig, out_dir, name, 0.0)


def plot_rank(table: pd.DataFrame, a: str, b: str, ra: RankAgreement, out_dir: Path, name: str) -> list[Path]:
    """One point per variant: its top-1 under protocol a against protocol b."""
    wide = table.pivot_table(index="variant", columns="protocol_name", values="top1_mean").dropna()
    fig, ax = plt.subplots(figsize=(5.6, 4.8))
    ax.scatter(wide[a], wide[b], s=28)
    prefix = os.path.commonprefix(list(wide.index)) if len(wide) > 1 else ""
    for variant, r in wide.iterrows():  # short labels (the shared prefix dropped) keep neighbours legible
        ax.annotate(variant[len(prefix):] or variant, (r[a], r[b]), xytext=(3, 3), textcoords="offset points",
                    fontsize=8)
    ax.margins(0.08)
    if prefix:
        ax.text(0.98, 0.02, f"labels: {prefix}NN", transform=ax.transAxes, ha="right", fontsize=8, color="0.4")
    ax.set_xlabel(f"top-1 under {a} (%)")
    ax.set_ylabel(f"top-1 under {b} (%)")
    ax.set_title(f"Kendall tau {ra.kendall:.2f} [{ra.kendall_ci[0]:.2f}, {ra.kendall_ci[1]:.2f}], "
                 f"Spearman rho {ra.spearman:.2f} [{ra.spearman_ci[0]:.2f}, {ra.spearman_ci[1]:.2f}]\n"
                 f"{ra.n} variants, bootstrap 95% intervals", fontsize=9)
    return save(fig, out_dir, name, 0.0)


def plot_fidelity(table: list, reference_tau: float | None, out_dir: Path, against: str = "published ImageNet top-1",
                  per: str = "151M-class model", name: str = "fidelity", minutes: str = "CPU minutes",
                  reference_cost: float | None = None) -> list[Path]:
    """Kendall tau against a reference ranking (published top-1, or long training) with its
    bootstrap interval against CPU cost, one point per protocol; zero-cost scores sit at the left edge.
    `reference_cost`: the reference's own minutes per run (long training), drawn as a vertical line."""
    with plt.rc_context(RC):
        fig, ax = plt.subplots(figsize=(7.5, 4.8))
        costs = [f.cpu_min for f in table if f.kind == "trained" and np.isfinite(f.cpu_min)]
        floor = min(costs) / 4 if costs else 0.1
        for f in table:
            if f.kind == "trained" and not np.isfinite(f.cpu_min):
                continue  # its 151M-class model has not run yet: no cost to place it at
            x = f.cpu_min if f.kind == "trained" else floor
            color = CANDIDATE.color if f.kind == "trained" else PALETTE[2]
            lo, hi = f.kendall_ci
            # a percentile interval need not hold its estimate: clip the bars at the point
            err = [[max(0.0, f.kendall - lo)], [max(0.0, hi - f.kendall)]] if np.isfinite(lo) else None
            ax.errorbar([x], [f.kendall], yerr=err, fmt="o", color=color,
                        capsize=3, ms=6)
            ax.annotate(f.protocol, (x, f.kendall), xytext=(6, 4), textcoords="offset points", fontsize=9,
                        path_effects=HALO)
        if reference_tau is not None:
            ax.axhline(reference_tau, color="0.35", ls=(0, (4, 3)), lw=1)
            ax.annotate(f"ranking by MAdds: tau {reference_tau:.2f}", (1, reference_tau),
                        xycoords=("axes fraction", "data"), xytext=(-4, 4), textcoords="offset points",
                        ha="right", fontsize=9, color="0.35")
        if reference_cost is not None and np.isfinite(reference_cost):
            ax.axvline(reference_cost, color="0.35", ls=(0, (1, 2)), lw=1)
            ax.annotate(f"the truth itself: {reference_cost:.3g} min", (reference_cost, 0.98),
                        xycoords=("data", "axes fraction"), xytext=(-4, 0), textcoords="offset points",
                        ha="right", va="top", fontsize=9, color="0.35")
        ax.axhline(0, color="0.7", lw=0.8)
        ax.set_xscale("log")
        # plain numbers, and on the minor ticks only 2, 3 and 5 (a log axis otherwise writes 2x10^0)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "235" else ""))
        ax.set_xlabel(f"{minutes} per {per} (log; zero-cost scores at the left edge)")
        ax.set_ylabel(f"Kendall tau vs {against}")
        ax.set_title("Proxy fidelity against cost (95% bootstrap intervals over models)")
        ax.legend([Line2D([], [], marker="o", ls="none", color=CANDIDATE.color),
                   Line2D([], [], marker="o", ls="none", color=PALETTE[2])],
                  ["trained protocol", "zero-cost score"], loc="lower right", frameon=False)
        return save(fig, out_dir, name, 0.0)
