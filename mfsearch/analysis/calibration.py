"""Proxy calibration: how well each protocol of a study ranks models the way their
published ImageNet top-1 does, and what that costs.

Per protocol (a trained one ranks by mean final top-1 over seeds, a zero-cost one by
its mean score): Kendall tau and Spearman rho against published top-1 with bootstrap
intervals over models; the partial Spearman correlation with log MAdds held fixed (does
the protocol know anything the cost column does not?); the share of matched
Mobile-Former/MobileNetV3 pairs ordered as published; the Mobile-Former presets alone
in published order; seed-to-seed rank stability; within-family monotonicity (share of
size-ordered pairs of one family ranked in size order); the Mobile-Former power-law
exponent of error against MAdds; and CPU minutes per 151M-class model. Protocols are
compared with a paired bootstrap of tau over the same resampled models.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ..models import FAMILIES, MobileFormerConfig, MobileNetV3Config, published_top1
from .load import AnalysisError
from .markdown import interval, num, table
from .stats import bootstrap_interval, kendall, nearest_pairs, power_fit, spearman

# the "151M-class" model whose CPU time is the cost column; a set without it (another family's)
# uses its model nearest 151M MAdds
COST_MODEL, COST_MADDS = "mobile_former_151m", 151e6
def size_orders() -> dict[str, tuple[str, ...]]:
    """Every family's named sizes of one design, smallest first (label -> names)."""
    return {label: names for f in FAMILIES.values() for label, names in (f.size_orders or {}).items()}


@dataclass
class Fidelity:
    """One protocol's row of the calibration table (NaN where it does not apply)."""
    protocol: str
    kind: str                          # trained | zero-cost
    n: int                             # models with a published top-1
    kendall: float
    kendall_ci: tuple[float, float]
    spearman: float
    spearman_ci: tuple[float, float]
    partial: float                     # Spearman with log MAdds partialled out
    partial_ci: tuple[float, float]
    presets_kendall: float             # the 7 Mobile-Former presets alone
    pairs_right: int                   # matched MF/MNV3 pairs ordered as published
    pairs: int
    monotone: float                    # share of size-ordered same-family pairs ranked in order
    seed_stability: float              # mean Spearman between seeds over all variants
    seeds: int
    mf_exponent: float                 # power law of error vs MAdds, Mobile-Former presets
    mf_exponent_ci: tuple[float, float]
    cpu_min: float                     # wall minutes of one cost_model() run, the fastest seed's
    cost_model: str = COST_MODEL


def scores(df: pd.DataFrame) -> pd.DataFrame:
    """variant x (protocol, seed) table of the ranking score of complete rows."""
    rows = df[df["status"] == "complete"].dropna(subset=["score"])
    return rows.pivot_table(index="variant", columns=["protocol_name", "seed"], values="score", aggfunc="mean")


def partial_spearman(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> float:
    """Spearman correlation of x and y with z held fixed (first-order partial of ranks)."""
    rx, ry, rz = (stats.rankdata(v) for v in (x, y, z))
    r = np.corrcoef(np.vstack([rx, ry, rz]))
    rxy, rxz, ryz = r[0, 1], r[0, 2], r[1, 2]
    denom = np.sqrt((1 - rxz ** 2) * (1 - ryz ** 2))
    return float((rxy - rxz * ryz) / denom) if denom > 1e-9 else float("nan")


def monotonicity(mean: pd.Series) -> float:
    """Share of same-family pairs (smaller, larger) with the larger ranked higher; ties count half."""
    right = total = 0.0
    for order in size_orders().values():
        present = [v for v in order if v in mean.index and np.isfinite(mean[v])]
        for small, large in itertools.combinations(present, 2):
            total += 1
            right += 1.0 if mean[large] > mean[small] else 0.5 if mean[large] == mean[small] else 0.0
    return right / total if total else float("nan")


def seed_stability(per_seed: pd.DataFrame) -> float:
    """Mean Spearman rho between the rankings of every two seeds (NaN with one seed)."""
    cols = [c for c in per_seed.columns if per_seed[c].notna().sum() >= 3]
    rhos = []
    for a, b in itertools.combinations(cols, 2):
        both = per_seed[[a, b]].dropna()
        if len(both) >= 3:
            rhos.append(stats.spearmanr(both[a], both[b]).statistic)
    return float(np.mean(rhos)) if rhos else float("nan")


def models_table(df: pd.DataFrame, published: dict[str, float]) -> pd.DataFrame:
    """One row per variant: family, MAdds, published top-1 (NaN when none)."""
    first = df.groupby("variant").first()
    out = pd.DataFrame({"family": first["family"], "flops": first["flops"].astype(float)})
    out["published"] = out.index.map(lambda v: published.get(v, np.nan)).astype(float)
    return out


def cost_model(models: pd.DataFrame) -> str:
    """The variant whose CPU time prices a protocol: COST_MODEL, or the one nearest its MAdds."""
    return COST_MODEL if COST_MODEL in models.index else str((models["flops"] - COST_MADDS).abs().idxmin())


def fidelity(df: pd.DataFrame, published: dict[str, float], n_boot: int = 2000, seed: int = 0) -> list[Fidelity]:
    """The calibration table: one `Fidelity` per protocol, in the study's order."""
    per = scores(df)
    if per.empty:
        raise AnalysisError("no complete row with a score yet; run the study first")
    models = models_table(df, published)
    known = models.dropna(subset=["published"])
    if len(known) < 3:
        raise AnalysisError("calibration needs at least 3 variants with a published top-1")
    pairs = nearest_pairs(known.loc[known["family"] == MobileFormerConfig.family, "flops"],
                          known.loc[known["family"] == MobileNetV3Config.family, "flops"])
    out, priced = [], cost_model(models)
    for proto in dict.fromkeys(df["protocol_name"]):
        if proto not in per.columns.get_level_values(0):
            continue
        seeds = per[proto]
        mean = seeds.mean(axis=1)
        k = known.join(mean.rename("m")).dropna(subset=["m"])
        if len(k) < 3:
            continue  # not enough of this protocol trained yet to rank anything
        x, y, z = k["m"].to_numpy(float), k["published"].to_numpy(float), np.log(k["flops"].to_numpy(float))
        rows = df[df["protocol_name"] == proto]
        trained = bool(rows["final_top1"].notna().any())
        presets = k[k["family"] == MobileFormerConfig.family]
        _, exp, exp_ci = (power_fit(presets["flops"].to_numpy(float), presets["m"].to_numpy(float))
                          if trained else (None, float("nan"), (float("nan"), float("nan"))))
        cost = rows.loc[rows["variant"] == priced, "wall_time"]
        def boot(stat, n=len(x)):
            return bootstrap_interval(stat, n, n_boot, seed)
        scored = [(a, b) for a, b in pairs if np.isfinite(mean.get(a, np.nan)) and np.isfinite(mean.get(b, np.nan))]
        out.append(Fidelity(
            protocol=proto, kind="trained" if trained else "zero-cost", n=len(k),
            kendall=kendall(x, y), kendall_ci=boot(lambda i, x=x, y=y: kendall(x[i], y[i])),
            spearman=spearman(x, y), spearman_ci=boot(lambda i, x=x, y=y: spearman(x[i], y[i])),
            partial=(partial := partial_spearman(x, y, z)),
            partial_ci=boot(lambda i, x=x, y=y, z=z: partial_spearman(x[i], y[i], z[i]))
            if np.isfinite(partial) else (float("nan"), float("nan")),
            presets_kendall=kendall(presets["m"].to_numpy(float), presets["published"].to_numpy(float))
            if len(presets) >= 3 else float("nan"),
            pairs_right=sum(1 for a, b in scored if
                            np.sign(mean[a] - mean[b]) == np.sign(known.at[a, "published"] - known.at[b, "published"])),
            pairs=len(scored), monotone=monotonicity(mean), seed_stability=seed_stability(seeds),
            seeds=int(seeds.notna().any().sum()), mf_exponent=exp, mf_exponent_ci=exp_ci,
            # the fastest seed's: contention only ever adds time
            cpu_min=float(cost.min() / 60) if len(cost) else float("nan"), cost_model=priced))
    return out


DEFAULT = "default"   # the protocol that ships (ProxyProtocol()): the one the others are compared with


def reference_protocol(table: list[Fidelity]) -> Fidelity | None:
    """The trained protocol the others are compared with: `default` when the study has it,
    else the highest tau among those that ranked every published model (a partly run
    protocol's tau on a few models would win)."""
    trained = [f for f in table if f.kind == "trained" and np.isfinite(f.kendall)]
    full = max((f.n for f in table), default=0)
    shipped = next((f for f in trained if f.protocol == DEFAULT and f.n == full), None)
    return shipped or max((f for f in trained if f.n == full), key=lambda f: f.kendall, default=None)


def paired_difference(df: pd.DataFrame, published: dict[str, float], a: str, b: str, stat: str = "kendall",
                      n_boot: int = 2000, seed: int = 0) -> tuple[float, tuple[float, float]]:
    """stat(a) - stat(b) against published top-1 with a paired bootstrap over the same models;
    stat is `kendall` or `partial` (Spearman with log MAdds held fixed)."""
    per = scores(df)
    known = models_table(df, published).dropna(subset=["published"])
    k = known.join(per[a].mean(axis=1).rename("a")).join(per[b].mean(axis=1).rename("b")).dropna()
    xa, xb, y = (k[c].to_numpy(float) for c in ("a", "b", "published"))
    z = np.log(k["flops"].to_numpy(float))
    def f(x, i):
        return kendall(x[i], y[i]) if stat == "kendall" else partial_spearman(x[i], y[i], z[i])
    every = np.arange(len(y))
    return f(xa, every) - f(xb, every), bootstrap_interval(lambda i: f(xa, i) - f(xb, i), len(y), n_boot, seed)


def paired_stability_difference(df: pd.DataFrame, a: str, b: str, n_boot: int = 2000,
                                seed: int = 0) -> tuple[float, tuple[float, float]]:
    """Seed stability of a minus that of b (mean Spearman between seeds, all variants), with a
    paired bootstrap over the variants both ranked: does one protocol's ranking depend more
    on the seed?"""
    per = scores(df)
    both = per[a].join(per[b], lsuffix="_a", rsuffix="_b").dropna()
    sa, sb = both.iloc[:, :per[a].shape[1]], both.iloc[:, per[a].shape[1]:]
    def diff(i):
        return seed_stability(sa.iloc[i].reset_index(drop=True)) - seed_stability(sb.iloc[i].reset_index(drop=True))
    every = np.arange(len(both))
    return diff(every), bootstrap_interval(diff, len(both), n_boot, seed)


def published_table(variants: list[str], configs: dict[str, str]) -> dict[str, float]:
    """Published top-1 of the variants that are a registered model unmodified."""
    out = {}
    for v in variants:
        p = published_top1(v, configs.get(v))
        if p is not None:
            out[v] = p
    return out


def calibration_lines(df: pd.DataFrame, fid: list[Fidelity], published: dict[str, float],
                      protocols: dict[str, dict]) -> list[str]:
    """The report's calibration sections (markdown lines)."""
    lines = ["## Calibration table", "",
             f"Against the published ImageNet top-1 of up to {max(f.n for f in fid)} models (*n*: how many "
             "this protocol has ranked so far); intervals are 95% bootstrap "
             "intervals over models. *partial*: Spearman with log MAdds held fixed. *pairs*: matched "
             "Mobile-Former/MobileNetV3 pairs ordered as published. *presets*: Kendall tau of the 7 "
             "Mobile-Former presets alone. *monotone*: share of same-family size-ordered pairs ranked "
             "in size order. *stability*: mean Spearman between seeds (all variants). *MF exponent*: "
             "power law of error against MAdds over the presets. *CPU min*: one run of the model nearest "
             f"151M MAdds ({fid[0].cost_model}; the fastest of its seeds: machine contention only ever adds "
             "time).", ""]
    lines += table(["protocol", "kind", "n", "Kendall tau", "95%", "Spearman rho", "95%", "partial", "95%",
                    "presets tau", "pairs", "monotone", "stability", "seeds", "MF exponent", "95%", "CPU min"],
                   [[f.protocol, f.kind, f.n, f"{f.kendall:.3f}", interval(f.kendall_ci), f"{f.spearman:.3f}",
                     interval(f.spearman_ci), num(f.partial, ".3f"), interval(f.partial_ci),
                     num(f.presets_kendall, ".3f"), f"{f.pairs_right}/{f.pairs}" if f.pairs else "n/a",
                     num(f.monotone),
                     num(f.seed_stability), f.seeds, num(f.mf_exponent, ".3f"), interval(f.mf_exponent_ci, ".3f"),
                     num(f.cpu_min)] for f in fid])
    best = reference_protocol(fid)
    if best:
        what = "the default" if best.protocol == DEFAULT else "the best trained protocol"
        lines += ["", f"## Paired comparison with {what} ({best.protocol})", "",
                  f"tau(protocol) − tau({best.protocol}) and partial(protocol) − partial({best.protocol}) against "
                  "published top-1, paired bootstrap over the same models, and the difference in seed stability "
                  "(bootstrap over all variants): an interval that holds 0 means the two cannot be told apart.", ""]
        rows = []
        for f in fid:
            if f.protocol != best.protocol and f.n == best.n:
                d, ci = paired_difference(df, published, f.protocol, best.protocol)
                row = [f.protocol, f"{d:+.3f}", interval(ci, "+.3f")]
                if np.isfinite(f.partial):
                    dp, cip = paired_difference(df, published, f.protocol, best.protocol, "partial")
                    row += [f"{dp:+.3f}", interval(cip, "+.3f")]
                else:
                    row += ["n/a", "n/a"]
                if f.kind == "trained":
                    ds, cis = paired_stability_difference(df, f.protocol, best.protocol)
                    row += [f"{ds:+.3f}", interval(cis, "+.3f")]
                else:
                    row += ["n/a", "n/a"]   # a score at initialisation hardly depends on the seed
                rows.append(row + [num(f.cpu_min)])
        lines += table(["protocol", "Δ tau", "95%", "Δ partial", "95%", "Δ stability", "95%", "CPU min"], rows)
    first = next(iter(protocols.values()))
    varying = [k for k in first if len({str(p.get(k)) for p in protocols.values()}) > 1]
    common = ", ".join(f"{k} {v}" for k, v in first.items() if k not in varying)
    lines += ["", "## Protocols", "", f"All protocols: {common}.", ""]
    lines += table(["protocol", *varying], [[name, *(str(p.get(k)) for k in varying)] for name, p in protocols.items()])
    lines += ["", "## Mean score per variant and protocol", ""]
    mean = scores(df).T.groupby(level=0, sort=False).mean().T.reindex(list(dict.fromkeys(df["variant"])))
    cols = [p for p in protocols if p in mean.columns]
    lines += table(["variant", "published", *cols],
                   [[v, num(published.get(v, np.nan), ".1f"), *(num(mean.at[v, c], ".4g") for c in cols)]
                    for v in mean.index])
    return lines
