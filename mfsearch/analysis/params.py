"""The parameter side of a search's analysis, for runs searched with `--cost params`,
`--cost latency` or a `--param-budget`: top-1 against parameters (1000-class head, the budget's count) for
Mobile-Former and MobileNetV3, both fronts and the parameter budget."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from .figures import BASELINE, CANDIDATE, save
from .load import RunSet
from .markdown import num, table
from .pareto import pareto_front

AXIS = "params (M)"
CAPTIONS = {
    "params_front": f"Proxy top-1 against {AXIS}, 1000-class head: trials, the Mobile-Former front, the "
                    "MobileNetV3 baselines and their front, and the parameter budget.",
}


def has_params_axis(rs: RunSet) -> bool:
    """Whether a run searched against parameters (a params front or a parameter budget) or
    against latency: a CPU-deployment question asks about the other scarce resource too."""
    return any(r.cost in ("params", "latency") or r.param_budget for r in rs.runs)


def budgets(rs: RunSet) -> list[float]:
    return sorted({r.param_budget for r in rs.runs if r.param_budget})


def fronts(rs: RunSet) -> tuple[pd.DataFrame, pd.DataFrame]:
    return pareto_front(rs.trials, x="params"), pareto_front(rs.baselines, x="params")


def plot_params(rs: RunSet, out_dir: Path) -> dict[str, list[Path]]:
    front, bfront = fronts(rs)
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    done = rs.trials[(rs.trials["status"] == "complete") & rs.trials["final_top1"].notna()]
    ax.scatter(done["params"] / 1e6, done["final_top1"], s=26, color=CANDIDATE.color, alpha=0.4, linewidths=0,
               label=f"{CANDIDATE.label} trials ({len(done)})")
    if not front.empty:
        ax.step(front["params"] / 1e6, front["final_top1"], where="post", color=CANDIDATE.color, lw=2,
                label=f"{CANDIDATE.label} front ({len(front)})")
    if not bfront.empty:
        b = rs.baselines[(rs.baselines["status"] == "complete") & rs.baselines["final_top1"].notna()]
        ax.scatter(b["params"] / 1e6, b["final_top1"], marker=BASELINE.marker, s=34, color=BASELINE.color,
                   label=f"{BASELINE.label} ({len(b)})")
        ax.step(bfront["params"] / 1e6, bfront["final_top1"], where="post", color=BASELINE.color, ls="--", lw=1.5,
                label=f"{BASELINE.label} front")
    for budget in budgets(rs):
        ax.axvline(budget / 1e6, color="0.35", ls=(0, (4, 3)), lw=1, label=f"parameter budget {budget / 1e6:g}M")
    ax.set_xlabel(f"{AXIS}, 1000-class head")
    ax.set_ylabel("proxy top-1 (%)")
    ax.legend(fontsize=8)
    return {"params_front": save(fig, out_dir, "params_front", 0.0)}


def params_lines(rs: RunSet) -> list[str]:
    """report.md's parameter section: both fronts in parameters."""
    front, bfront = fronts(rs)
    lines = ["", "## Fronts in parameters", ""]
    if budgets(rs):
        t = rs.trials
        over = t[(t["status"] == "complete") & (t["params"] > max(budgets(rs)))]
        lines += [f"Parameter budget {', '.join(f'{b / 1e6:g}M' for b in budgets(rs))} (1000-class head); "
                  f"trained trials over it: {len(over)}.", ""]
    rows = [[family.label, f"{r['run']} / {r['trial_id']}" if family is CANDIDATE else str(r["trial_id"]),
             num(r["params"] / 1e6, ".2f"), f"{r['flops'] / 1e6:.1f}", num(r["final_top1"], ".2f")]
            for family, f in ((CANDIDATE, front), (BASELINE, bfront)) for _, r in f.iterrows()]
    return lines + (table(["front", "model", AXIS, "MAdds (M)", "top-1 (%)"], rows)
                    if rows else ["No complete model."])
