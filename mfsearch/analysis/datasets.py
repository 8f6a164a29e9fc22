"""Does a cheap dataset rank architectures like a real one? For a study trained on several
datasets (`datasets:` in its file), per dataset: how many variants end near chance, how
well two seeds agree on the ranking, and how far each dataset's ranking agrees with the
others' (Spearman rho of the seed-mean top-1, bootstrap intervals over variants)."""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import pandas as pd

from .markdown import interval, num
from .markdown import table as markdown_table
from .stats import RankAgreement, rank_correlations

NEAR_CHANCE_POINTS = 3.0   # a run ending at most this far above chance did not learn


@dataclass
class DatasetCheck:
    dataset: str
    variants: int
    chance: float                        # % (100 / classes)
    near_chance: int                     # variants whose seed-mean top-1 is within NEAR_CHANCE_POINTS of chance
    near_chance_runs: int                # single runs (variant, seed) within it
    runs: int
    seeds: RankAgreement | None          # the first two seeds' rankings against each other
    top1_min: float
    top1_max: float


def chance_level(rows: pd.DataFrame) -> float:
    classes = pd.to_numeric(rows.get("num_classes"), errors="coerce").dropna() if "num_classes" in rows else []
    return 100.0 / float(classes.iloc[0]) if len(classes) else 10.0   # rows from before the column: 10 classes


def check(rows: pd.DataFrame, dataset: str) -> DatasetCheck:
    """`rows`: one protocol's complete rows on `dataset`."""
    chance = chance_level(rows)
    mean = rows.groupby("variant")["final_top1"].mean()
    near = chance + NEAR_CHANCE_POINTS
    per_seed = rows.pivot_table(index="variant", columns="seed", values="final_top1")
    seeds = None
    if per_seed.shape[1] >= 2:
        both = per_seed.iloc[:, :2].dropna()
        if len(both) >= 3:
            seeds = rank_correlations(both.iloc[:, 0].to_numpy(float), both.iloc[:, 1].to_numpy(float))
    return DatasetCheck(dataset, len(mean), chance, int((mean <= near).sum()), int((rows["final_top1"] <= near).sum()),
                        len(rows), seeds, float(mean.min()), float(mean.max()))


def agreement(rows: pd.DataFrame, a: str, b: str) -> RankAgreement | None:
    """Spearman/Kendall of the seed-mean top-1 on dataset a against dataset b, shared variants."""
    wide = rows.pivot_table(index="variant", columns="dataset", values="final_top1", aggfunc="mean")
    both = wide[[a, b]].dropna() if a in wide and b in wide else wide.iloc[:0]
    if len(both) < 3:
        return None
    return rank_correlations(both[a].to_numpy(float), both[b].to_numpy(float))


def dataset_lines(df: pd.DataFrame) -> tuple[list[str], dict]:
    """Report section for every protocol of a several-dataset study, and a summary of the first."""
    lines, summary = [], {}
    for proto, rows in df.groupby("protocol_name", sort=False):
        names = list(dict.fromkeys(rows["dataset"]))
        checks = [check(rows[rows["dataset"] == d], d) for d in names]
        lines += ["", f"## Datasets under protocol {proto}", "",
                  f"*near chance*: variants whose seed-mean top-1 ends within {NEAR_CHANCE_POINTS:g} points of "
                  "chance (single runs in brackets). *seed rho*: Spearman between the first two seeds' rankings, "
                  "bootstrap 95% over variants.", ""]
        lines += markdown_table(
            ["dataset", "variants", "chance (%)", "near chance", "top-1 range (%)", "seed rho", "95%"],
            [[c.dataset, c.variants, f"{c.chance:.1f}", f"{c.near_chance} ({c.near_chance_runs} of {c.runs} runs)",
              f"{c.top1_min:.1f}-{c.top1_max:.1f}", num(c.seeds.spearman if c.seeds else None),
              interval(c.seeds.spearman_ci if c.seeds else None)] for c in checks])
        pairs = [(a, b, agreement(rows, a, b)) for a, b in itertools.combinations(names, 2)]
        pairs = [(a, b, ra) for a, b, ra in pairs if ra is not None]
        if pairs:
            lines += ["", "Agreement between datasets (seed-mean top-1 over the variants both have):", ""]
            lines += markdown_table(["datasets", "variants", "Spearman rho", "95%", "Kendall tau", "95%"],
                                    [[f"{a} vs {b}", ra.n, num(ra.spearman), interval(ra.spearman_ci), num(ra.kendall),
                                      interval(ra.kendall_ci)] for a, b, ra in pairs])
        if not summary:
            summary = {"protocol": proto, "checks": checks, "agreement": pairs}
    return lines, summary


def headline(summary: dict) -> str:
    parts = []
    for c in summary.get("checks", []):
        seeds = f", seed rho {c.seeds.spearman:.2f}" if c.seeds else ""
        parts.append(f"{c.dataset}: {c.near_chance}/{c.variants} near chance{seeds}")
    for a, b, ra in summary.get("agreement", []):
        parts.append(f"{a} vs {b} rho {ra.spearman:.2f}")
    return "; ".join(parts) if parts else "no dataset comparison yet"
