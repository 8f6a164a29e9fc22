"""The latency side of a search's analysis, for runs whose rows carry measured latency
(`--latency-budget` or `--cost latency`): top-1 against latency fronts for Mobile-Former and
MobileNetV3, and latency against MAdds for every measured model, coloured by family; and the
figure of `mfsearch latency --plot` (every registered model timed)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import NullFormatter, ScalarFormatter

from ..models import MobileFormerConfig, config_from_dict, families, published_top1
from .figures import BASELINE, CANDIDATE, save
from .load import RunSet
from .markdown import num, table
from .pareto import hypervolume, pareto_front, reach_x

CAPTIONS = {
    "latency_front": "Proxy top-1 against measured latency (batch 1): trials, the Mobile-Former front, the "
                     "MobileNetV3 baselines and their front, and the latency budget.",
    "latency_madds": "Measured latency against MAdds for every measured model: how far MAdds predict speed.",
}
FRONT_DIR = "front"   # beside report.md: each latency front point's config


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
    ax.scatter(done["latency_ms"], done["final_top1"], s=26, color=CANDIDATE.color, alpha=0.4, linewidths=0,
               label=f"{CANDIDATE.label} trials ({len(done)})")
    if not front.empty:
        ax.step(front["latency_ms"], front["final_top1"], where="post", color=CANDIDATE.color, lw=2,
                label=f"{CANDIDATE.label} front ({len(front)})")
    b = measured(rs.baselines)
    b = b[b["final_top1"].notna()]
    if not b.empty:
        ax.scatter(b["latency_ms"], b["final_top1"], marker=BASELINE.marker, s=34, color=BASELINE.color,
                   label=f"{BASELINE.label} ({len(b)})")
        ax.step(bfront["latency_ms"], bfront["final_top1"], where="post", color=BASELINE.color, ls="--", lw=1.5,
                label=f"{BASELINE.label} front")
    for budget in sorted({r.latency_budget for r in rs.runs if r.latency_budget}):
        ax.axvline(budget, color="0.35", ls=(0, (4, 3)), lw=1, label=f"latency budget {budget:g} ms")
    ax.set_xlabel("latency (ms, batch 1, median)")
    ax.set_ylabel("proxy top-1 (%)")
    ax.legend(fontsize=8)
    files = {"latency_front": save(fig, out_dir, "latency_front", 0.0)}
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    every = pd.concat([measured(rs.trials).assign(kind=CANDIDATE.label),
                       measured(rs.baselines).assign(kind=BASELINE.label)])
    every = every.drop_duplicates(subset=["config"])
    for kind, color, marker in ((f.label, f.color, f.marker) for f in (CANDIDATE, BASELINE)):
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


def latency_reference(rs: RunSet) -> float:
    """The latency hypervolume's reference x (ms): the box the report shares with others when it
    has one (a study's per-space reports take the merged one's, so their areas compare), the
    latency budget when the runs had one, else the slowest complete model measured, so both
    families' areas share one stated box."""
    if getattr(rs, "latency_box", None) is not None:
        return float(rs.latency_box)
    budgets = [r.latency_budget for r in rs.runs if r.latency_budget]
    if budgets:
        return float(max(budgets))
    every = pd.concat([measured(rs.trials), measured(rs.baselines)])
    every = every[(every["status"] == "complete") & every["final_top1"].notna()]
    return float(every["latency_ms"].max()) if not every.empty else float("nan")


def equal_top1(front: pd.DataFrame, other: pd.DataFrame) -> np.ndarray:
    """For each point of `front`: the least latency at which `other` reaches its top-1 (NaN: never)."""
    if front.empty or other.empty:
        return np.full(len(front), np.nan)
    return reach_x(other, front["final_top1"].to_numpy(dtype=float), x="latency_ms")


def latency_lines(rs: RunSet) -> list[str]:
    """report.md's latency section: both fronts in latency, their hypervolume in ms x %, and
    each front point against the other family's latency at the same proxy top-1."""
    front, bfront = fronts(rs)
    lines = ["", "## Fronts in measured latency", ""]
    budgets = sorted({r.latency_budget for r in rs.runs if r.latency_budget})
    if budgets:
        over = measured(rs.trials)
        over = over[(over["status"] == "complete") & (over["latency_ms"] > max(budgets))]
        lines += [f"Latency budget {', '.join(f'{b:g}' for b in budgets)} ms; trained trials over it: {len(over)}.", ""]
    if front.empty and bfront.empty:
        return lines + ["No complete model with a measured latency."]
    ref = latency_reference(rs)
    box = ("the study's, shared by its merged and per-space reports" if getattr(rs, "latency_box", None) is not None
           else "the latency budget" if budgets else "the slowest complete model measured")
    lines += [f"Hypervolume in latency: area dominated up to ({ref:.2f} ms, 0 %), {box}; units ms x top-1 (%).", ""]
    lines += table(["front", "hypervolume (ms x %)", "points"],
                   [[fam.label, f"{hypervolume(f, (ref, 0.0), x='latency_ms'):.1f}", str(len(f))]
                    for fam, f in ((CANDIDATE, front), (BASELINE, bfront)) if not f.empty])
    lines += ["", "Each front point against the other family's front: the least latency at which it reaches the "
              "same proxy top-1 (never: its front stays below), and the gap in ms, Mobile-Former minus "
              "MobileNetV3 (negative: Mobile-Former is faster at that top-1). The last column is what each "
              "Mobile-Former kept of the global part: blocks (of its non-lite blocks) with dynamic ReLU and with "
              "bridges and the Former, the token counts they run on, and the head's expansion.", ""]
    lines += [f"Each front point's config is in `{FRONT_DIR}/` beside this report (`mf_<run>_t<trial>.json`, "
              "`mnv3_<variant>_<width>.json`): time them again with `mfsearch latency --models "
              f"{FRONT_DIR}/*.json`, or train them again by naming the files as a variants study's models.", ""]
    return lines + table(["front", "model", "MAdds (M)", "latency (ms)", "p10-p90", "top-1 (%)",
                          "other front at this top-1 (ms)", "gap (ms)", "global part kept"],
                         _point_rows(front, bfront))


def front_file(row: pd.Series, baseline: bool) -> str:
    """A latency front point's config file name: `mnv3_small_040` for a baseline,
    `mf_<run>_t<trial>` for a trial (`mf_50M_mf_cpu_t10`: run 50M-mobile_former_cpu, trial 10)."""
    name = (str(row["trial_id"]).replace("mobilenet_v3", "mnv3") if baseline
            else f"mf_{str(row['run']).replace('mobile_former', 'mf')}_t{row['trial_id']}")
    return re.sub(r"\W+", "_", name)


def write_front_configs(rs: RunSet, out_dir: Path) -> list[Path]:
    """Each latency front point's config as `front/NAME.json` beside the report, so the points
    can be timed again (`mfsearch latency --models front/*.json`) or trained again (a variants
    study's `model:`). Files of an earlier front of this name pattern go; runs without a
    latency write and remove nothing. Two points whose names clash (runs named alike in
    different folders) are told apart by a suffix rather than one overwriting the other."""
    if not has_latency(rs):
        return []
    folder = out_dir / FRONT_DIR
    for old in [*folder.glob("mf_*_t*.json"), *folder.glob("mnv3_*.json")]:
        old.unlink()
    front, bfront = fronts(rs)
    folder.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for frame, baseline in ((front, False), (bfront, True)):
        for _, r in frame.iterrows():
            name = front_file(r, baseline)
            path = folder / f"{name}.json"
            k = 2
            while path in paths:
                path, k = folder / f"{name}_{k}.json", k + 1
            path.write_text(json.dumps(json.loads(r["config"]), indent=1, sort_keys=True) + "\n")
            paths.append(path)
    return paths


def _point_rows(front: pd.DataFrame, bfront: pd.DataFrame) -> list[list[str]]:
    """The latency table's rows: each front point, the other front's latency at its top-1 and
    the gap (Mobile-Former minus MobileNetV3)."""
    def cells(r: pd.Series, other: float, missing: str, gap: float) -> list[str]:
        return [f"{r['flops'] / 1e6:.1f}", f"{r['latency_ms']:.2f}", f"{r['latency_p10_ms']:.2f}-"
                f"{r['latency_p90_ms']:.2f}", num(r["final_top1"], ".2f"), num(other, ".2f", missing), num(gap, "+.2f")]
    never_mb, never_mf = ("never" if not f.empty else "no front" for f in (bfront, front))
    rows = [[CANDIDATE.label, f"{r['run']} / {r['trial_id']}", *cells(r, o, never_mb, r["latency_ms"] - o),
             global_part(r["config"])] for (_, r), o in zip(front.iterrows(), equal_top1(front, bfront))]
    return rows + [[BASELINE.label, str(r["trial_id"]), *cells(r, o, never_mf, o - r["latency_ms"]), ""]
                   for (_, r), o in zip(bfront.iterrows(), equal_top1(bfront, front))]


def global_part(config: str | dict) -> str:
    """What a Mobile-Former config kept of the part that costs CPU time beyond its MAdds, e.g.
    'dyReLU 4/9, bridges 9/9 on 6 tokens, head x6' ('' for another family)."""
    cfg = config_from_dict(json.loads(config) if isinstance(config, str) else config)
    if not isinstance(cfg, MobileFormerConfig):
        return ""
    rows = [g for g, b in zip(cfg.row_globals(), (b for b in cfg.blocks for _ in range(b.n))) if b.kind != "lite"]
    tokens = sorted({t for _, bridged, t in rows if bridged})
    on = f" on {'/'.join(map(str, tokens))} tokens" if tokens else ""
    return (f"dyReLU {sum(d for d, _, _ in rows)}/{len(rows)}, bridges {sum(b for _, b, _ in rows)}/{len(rows)}{on}, "
            f"head x{cfg.head_expansion}")


def plot_latency_table(rows: list[dict], runtimes: list[str], path: Path) -> None:
    """Median latency (p10-p90 bars) against MAdds per runtime, repeat agreement, and published
    ImageNet top-1 against the first runtime's latency (the equal-accuracy comparison), for
    the rows `mfsearch latency` measures (one per model: family, madds, records per runtime)."""
    fig, axes = plt.subplots(1, len(runtimes) + 2, figsize=(4.6 * (len(runtimes) + 2), 4.0), squeeze=False)
    axes = axes[0]
    for ax, rt in zip(axes, runtimes):
        for fam in families():
            sel = [r for r in rows if r["family"] == fam.name]
            if sel:
                med = [r[rt][0].median_ms for r in sel]
                err = [[m - r[rt][0].p10_ms for m, r in zip(med, sel)], [r[rt][0].p90_ms - m for m, r in zip(med, sel)]]
                ax.errorbar([r["madds"] / 1e6 for r in sel], med, yerr=err, fmt=fam.marker, color=fam.color,
                            capsize=3, label=fam.label)
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
    for fam in families():
        sel = [(r[rt][0].median_ms, published_top1(r["model"])) for r in rows if r["family"] == fam.name]
        sel = sorted((x, y) for x, y in sel if y is not None)
        if sel:
            ax.plot(*zip(*sel), marker=fam.marker, color=fam.color, label=fam.label)
    ax.set_xlabel(f"{rt} latency (ms)")
    ax.set_ylabel("published ImageNet top-1 (%)")
    ax.set_title("accuracy against measured latency", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    plt.close(fig)
