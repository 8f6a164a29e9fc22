"""Search truth: how well each cheap protocol ranks architectures of one cost band the way
long training on the same data (the protocol named `truth`) does, and what picking by it
costs.

Per protocol (a trained one ranks by final top-1, a zero-cost one by its score): Kendall
tau and Spearman rho against the truth with bootstrap intervals over architectures, on the
mean over seeds and per seed; the top-1 regret of its pick (the best truth in the set minus
the truth of the architecture the protocol ranks first), on the mean and per seed (a
search sees one seed); and the median wall minutes of one run. Beside that: the truth's own seed spread
against the spread between architectures, and each family's best truth (does
Mobile-Former beat MobileNetV3 at equal cost under long training?).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .load import AnalysisError
from .markdown import interval, num, table
from .stats import rank_correlations

TRUTH = "truth"


@dataclass
class ProtocolFidelity:
    """One protocol's row of the truth table."""
    protocol: str
    kind: str                          # trained | zero-cost
    n: int                             # architectures with both a truth and this protocol's score
    seeds: int
    kendall: float
    kendall_ci: tuple[float, float]
    spearman: float
    spearman_ci: tuple[float, float]
    seed_kendall: float                # mean tau of single seeds against the truth
    pick: str                          # the architecture ranked first (mean over seeds)
    regret: float                      # best truth - truth of `pick`
    seed_regret: float                 # mean over seeds of the regret of each seed's pick
    cpu_min: float                     # median wall minutes of one run
    threads: str = ""                  # torch threads the runs recorded ("" where none did)
    images: float = np.nan             # median training images of one run: the cost, whatever the host


def score_table(df: pd.DataFrame) -> pd.DataFrame:
    """variant x (protocol, seed) table of the ranking score (final top-1 or zero-cost score)."""
    rows = df[df["status"] == "complete"].dropna(subset=["score"])
    return rows.pivot_table(index="variant", columns=["protocol_name", "seed"], values="score", aggfunc="mean")


def truth_column(scores: pd.DataFrame) -> pd.Series:
    """Each architecture's truth: its mean top-1 over the truth protocol's seeds."""
    if TRUTH not in scores.columns.get_level_values(0):
        raise AnalysisError(f"no complete `{TRUTH}` row yet: the truth protocol ranks every other one")
    return scores[TRUTH].mean(axis=1).dropna()


def regret(score: pd.Series, truth: pd.Series) -> tuple[str, float]:
    """(the architecture `score` ranks first, best truth minus its truth), over shared architectures."""
    shared = score.index.intersection(truth.index)
    pick = score[shared].idxmax()
    return str(pick), float(truth[shared].max() - truth[pick])


def protocol_costs(df: pd.DataFrame) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Per protocol: median wall minutes and training images of one complete run, and the
    thread counts its rows recorded ("1/2" where they differ)."""
    # the median: a run slowed by other work on the machine moves a mean, not the median
    done = df[df["status"] == "complete"]
    minutes = done.groupby("protocol_name")["wall_time"].median() / 60
    images = (done["images_per_s"] * done["train_time"]).groupby(done["protocol_name"]).median() \
        if {"images_per_s", "train_time"} <= set(done) else pd.Series(dtype=float)
    threads = done.groupby("protocol_name")["threads"].agg(lambda t: "/".join(str(int(v)) for v in
                                                                            sorted(t.dropna().unique()))) \
        if "threads" in done else pd.Series(dtype=str)
    return minutes, images, threads


def protocol_fidelity(df: pd.DataFrame, n_boot: int = 2000) -> list[ProtocolFidelity]:
    """One row per protocol other than truth, in the study's order."""
    scores = score_table(df)
    truth = truth_column(scores)
    kinds = df.groupby("protocol_name", sort=False)["protocol"].first()
    minutes, images, threads = protocol_costs(df)
    out = []
    for name in kinds.index:
        if name == TRUTH or name not in scores.columns.get_level_values(0):
            continue
        per_seed = scores[name]
        mean = per_seed.mean(axis=1).dropna()
        shared = mean.index.intersection(truth.index)
        if len(shared) < 3:
            continue
        ra = rank_correlations(mean[shared].to_numpy(), truth[shared].to_numpy(), n_boot=n_boot)
        seed_taus, seed_regrets = [], []
        for seed in per_seed.columns:
            s = per_seed[seed].dropna()
            common = s.index.intersection(truth.index)
            if len(common) >= 3:
                seed_taus.append(rank_correlations(s[common].to_numpy(), truth[common].to_numpy(), n_boot=0).kendall)
                seed_regrets.append(regret(s[common], truth)[1])
        pick, loss = regret(mean[shared], truth)
        kind = "zero-cost" if '"score": null' not in kinds[name] else "trained"
        out.append(ProtocolFidelity(name, kind, len(shared), per_seed.shape[1], ra.kendall, ra.kendall_ci,
                                    ra.spearman, ra.spearman_ci, float(np.mean(seed_taus)) if seed_taus else np.nan,
                                    pick, loss, float(np.mean(seed_regrets)) if seed_regrets else np.nan,
                                    float(minutes.get(name, np.nan)), threads.get(name, ""),
                                    float(images.get(name, np.nan))))
    return out


def truth_spread(scores: pd.DataFrame) -> dict[str, float]:
    """The truth's seed spread (mean |difference| between two seeds of one architecture)
    against the spread between architectures (std of their truths)."""
    runs = scores[TRUTH] if TRUTH in scores.columns.get_level_values(0) else pd.DataFrame()
    twice = runs.dropna(thresh=2)
    gaps = [float(r.dropna().max() - r.dropna().min()) for _, r in twice.iterrows()]
    return {"architectures_with_two_seeds": len(twice), "seed_gap_mean": float(np.mean(gaps)) if gaps else np.nan,
            "between_std": float(runs.mean(axis=1).std(ddof=1)) if len(runs) > 1 else np.nan}


def truth_cost(df: pd.DataFrame) -> str:
    """One sentence: what the truth's runs cost (median per run, and in all)."""
    minutes, images, threads = protocol_costs(df)
    runs = df[(df["protocol_name"] == TRUTH) & (df["status"] == "complete")]
    return (f"The truth's cost: {len(runs)} runs of {num(images.get(TRUTH, np.nan) / 1e3, '.0f')}k training images, "
            f"{num(minutes.get(TRUTH, np.nan))} wall minutes each (median) at {threads.get(TRUTH) or '-'} "
            f"thread(s), {num(runs['wall_time'].sum() / 3600, '.1f')} hours in all.")


def family_best(df: pd.DataFrame, truth: pd.Series) -> pd.DataFrame:
    """Each family's best architecture under the truth, with its MAdds."""
    info = df.groupby("variant")[["family", "flops"]].first().loc[truth.index]
    ranked = info.assign(truth=truth).sort_values("truth", ascending=False)
    return ranked.groupby("family", sort=False).head(1)


def truth_lines(df: pd.DataFrame, fidelity: list[ProtocolFidelity]) -> tuple[list[str], str]:
    """The report's sections and a one-line headline."""
    scores = score_table(df)
    truth = truth_column(scores)
    spread = truth_spread(scores)
    lines = ["## Each protocol against the truth", "",
             f"Truth: `{TRUTH}` on {len(truth)} architectures (mean over its seeds). Kendall tau and Spearman rho "
             "with bootstrap 95% intervals over architectures; per-seed tau is a single seed's ranking (what one "
             "search sees); regret is the best truth minus the truth of the protocol's first pick, in top-1 points. "
             "A run's cost: the images it trained on (the same on any host) and its wall minutes, at the "
             "threads its rows recorded (medians over the protocol's runs).",
             ""]
    if not fidelity:   # a study in progress: say why the table is empty
        lines += [f"No protocol shares 3 architectures with the truth yet ({len(truth)} trained under it so far).", ""]
    lines += table(["protocol", "kind", "n", "seeds", "Kendall tau", "95% interval", "Spearman rho", "95% interval",
                    "per-seed tau", "pick", "regret", "per-seed regret", "images/run (k)", "wall min/run",
                    "threads"],
                   [[f.protocol, f.kind, f.n, f.seeds, num(f.kendall, ".3f"), interval(f.kendall_ci, ".3f"),
                     num(f.spearman, ".3f"), interval(f.spearman_ci, ".3f"), num(f.seed_kendall, ".3f"), f.pick,
                     num(f.regret), num(f.seed_regret), num(f.images / 1e3, ".0f"), num(f.cpu_min),
                     f.threads or "-"] for f in fidelity])
    lines += ["", "## The truth's seed spread", "",
              f"{spread['architectures_with_two_seeds']} architecture(s) trained under `{TRUTH}` with two seeds: "
              f"mean gap between seeds {num(spread['seed_gap_mean'])} points, against a standard deviation of "
              f"{num(spread['between_std'])} points between architectures."]
    lines += ["", truth_cost(df)]
    best = family_best(df, truth)
    lines += ["", "## Each family's best under the truth", ""]
    lines += table(["family", "variant", "MAdds (M)", "truth top-1 (%)"],
                   [[r.family, v, f"{r.flops / 1e6:.1f}", f"{r.truth:.2f}"] for v, r in best.iterrows()])
    fam = best.set_index("family")["truth"]
    if {"mobile_former", "mobilenet_v3"} <= set(fam.index):
        gap = fam["mobile_former"] - fam["mobilenet_v3"]
        lines += ["", f"Best Mobile-Former minus best MobileNetV3 under the truth: {gap:+.2f} points "
                      f"(seed gap of the truth: {num(spread['seed_gap_mean'])})."]
    lines += ["", "## Truth per architecture", ""]
    info = df.groupby("variant")[["family", "flops"]].first()
    lines += table(["variant", "family", "MAdds (M)", "truth top-1 (%)", "seeds"],
                   [[v, info.loc[v, "family"], f"{info.loc[v, 'flops'] / 1e6:.1f}", f"{t:.2f}",
                     int(scores[TRUTH].loc[v].notna().sum())] for v, t in truth.sort_values(ascending=False).items()])
    trained = [f for f in fidelity if f.kind == "trained"]
    head = f"truth on {len(truth)} architectures"
    if trained:
        top = max(trained, key=lambda f: f.kendall)
        head += f"; best trained protocol {top.protocol} (Kendall tau {top.kendall:.3f}, regret {top.regret:.2f})"
    return lines, head
