"""The latency side of a search's analysis, for runs whose rows carry measured latency
(`--latency-budget` or `--cost latency`): top-1 against latency fronts for Mobile-Former and
MobileNetV3, and latency against MAdds for every measured model, coloured by family."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from .figures import MF_COLOR, MNV3_COLOR, save  # noqa: E402
from .load import RunSet  # noqa: E402
from .markdown import num, table  # noqa: E402
from .pareto import pareto_front  # noqa: E402

CAPTIONS = {
    "latency_front": "Proxy top-1 against measured latency (batch 1): trials, the Mobile-Former front, the "
                     "MobileNetV3 baselines and their front, and the latency budget.",
    "latency_madds": "Measured latency against MAdds for every measured model: how far MAdds predict speed.",
}


def measured(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["latency_ms"].notna()] if "latency_ms" in df.columns else df.iloc[:0]


def has_latency(rs: RunSet) -> bool:
    return not measured(rs.trials).empty or not measured(rs.baselines).empty


def fronts(rs: RunSet) -> tuple[pd.DataFrame, pd.DataFrame]:
    return (pareto_front(measured(rs.trials), x="latency_ms"), pareto_front(measured(rs.baselines), x="latency_ms"))


def plot_latency(rs: RunSet, out_dir: Path) -> dict[str, list[Path]]:
    front, bfront = fronts(rs)
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    t = measured(rs.trials)
    done = t[t["final_top1"].notna()]
    ax.scatter(done["latency_ms"], done["final_top1"], s=26, color=MF_COLOR, alpha=0.4, linewidths=0,
               label=f"Mobile-Former trials ({len(done)})")
    if not front.empty:
        ax.step(front["latency_ms"], front["final_top1"], where="post", color=MF_COLOR, lw=2,
                label=f"Mobile-Former front ({len(front)})")
    b = measured(rs.baselines)
    b = b[b["final_top1"].notna()]
    if not b.empty:
        ax.scatter(b["latency_ms"], b["final_top1"], marker="s", s=34, color=MNV3_COLOR,
                   label=f"MobileNetV3 ({len(b)})")
        ax.step(bfront["latency_ms"], bfront["final_top1"], where="post", color=MNV3_COLOR, ls="--", lw=1.5,
                label="MobileNetV3 front")
    for budget in sorted({r.latency_budget for r in rs.runs if r.latency_budget}):
        ax.axvline(budget, color="0.35", ls=(0, (4, 3)), lw=1, label=f"latency budget {budget:g} ms")
    ax.set_xlabel("latency (ms, batch 1, median)")
    ax.set_ylabel("proxy top-1 (%)")
    ax.legend(fontsize=8)
    files = {"latency_front": save(fig, out_dir, "latency_front", 0.0)}
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    every = pd.concat([measured(rs.trials).assign(kind="Mobile-Former"),
                       measured(rs.baselines).assign(kind="MobileNetV3")])
    every = every.drop_duplicates(subset=["config"])
    for kind, color, marker in (("Mobile-Former", MF_COLOR, "o"), ("MobileNetV3", MNV3_COLOR, "s")):
        k = every[every["kind"] == kind]
        if not k.empty:
            ax.errorbar(k["flops"] / 1e6, k["latency_ms"], yerr=[k["latency_ms"] - k["latency_p10_ms"],
                                                               k["latency_p90_ms"] - k["latency_ms"]],
                        fmt=marker, color=color, alpha=0.7, capsize=2, label=f"{kind} ({len(k)})")
    ax.set_xlabel("MAdds (M), own resolution")
    ax.set_ylabel("latency (ms), median with p10-p90")
    ax.legend(fontsize=8)
    files["latency_madds"] = save(fig, out_dir, "latency_madds", 0.0)
    return files


def latency_lines(rs: RunSet) -> list[str]:
    """report.md's latency section: both fronts in latency."""
    front, bfront = fronts(rs)
    lines = ["", "## Fronts in measured latency", ""]
    budgets = sorted({r.latency_budget for r in rs.runs if r.latency_budget})
    if budgets:
        over = measured(rs.trials)
        over = over[(over["status"] == "complete") & (over["latency_ms"] > max(budgets))]
        lines += [f"Latency budget {', '.join(f'{b:g}' for b in budgets)} ms; trained trials over it: {len(over)}.", ""]
    rows = [["Mobile-Former", str(r["trial_id"]), f"{r['flops'] / 1e6:.1f}", f"{r['latency_ms']:.2f}",
             f"{r['latency_p10_ms']:.2f}-{r['latency_p90_ms']:.2f}", num(r["final_top1"], ".2f")]
            for _, r in front.iterrows()]
    rows += [["MobileNetV3", str(r["trial_id"]), f"{r['flops'] / 1e6:.1f}", f"{r['latency_ms']:.2f}",
              f"{r['latency_p10_ms']:.2f}-{r['latency_p90_ms']:.2f}", num(r["final_top1"], ".2f")]
             for _, r in bfront.iterrows()]
    return lines + (table(["front", "model", "MAdds (M)", "latency (ms)", "p10-p90", "top-1 (%)"], rows)
                    if rows else ["No complete model with a measured latency."])
