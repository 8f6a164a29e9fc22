"""Analysis of study folders (`search.py --experiment`): per-variant means with error
bars over seeds, power-law fits of error against MAdds per family, and the rank
agreement of two proxy protocols (Kendall tau, Spearman rho, bootstrap intervals)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

from .load import AnalysisError  # noqa: E402


def is_study_dir(path: Path) -> bool:
    try:
        return "study" in json.loads((Path(path) / "run.json").read_text())
    except (OSError, ValueError):
        return False


def load_study(path: Path) -> tuple[dict, pd.DataFrame]:
    path = Path(path)
    table = path / "trials.parquet"
    if not table.is_file():
        raise AnalysisError(f"{path}: no trials.parquet yet; run the study first")
    meta = json.loads((path / "run.json").read_text())
    df = pd.read_parquet(table)
    return meta, df[df["status"] == "complete"].copy()


def variant_table(df: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard deviation and count of final top-1 per (protocol, variant), in file order."""
    order = {v: i for i, v in enumerate(dict.fromkeys(df["variant"]))}
    g = df.groupby(["protocol_name", "variant", "family"], sort=False)
    out = g.agg(flops=("flops", "first"), params=("params", "first"), top1_mean=("final_top1", "mean"),
                top1_std=("final_top1", "std"), seeds=("final_top1", "size")).reset_index()
    out["top1_std"] = out["top1_std"].fillna(0.0)
    return out.sort_values(["protocol_name", "variant"], key=lambda s: s.map(order) if s.name == "variant"
                           else s).reset_index(drop=True)


@dataclass
class PowerLaw:
    """error(%) = a * MAdds^b, fitted in log-log space; b with its 95% interval."""
    family: str
    a: float
    b: float
    b_low: float
    b_high: float
    points: int


def power_law(table: pd.DataFrame, family: str) -> PowerLaw | None:
    rows = table[table["family"] == family]
    if len(rows) < 3 or rows["flops"].max() < 2 * rows["flops"].min():
        return None  # a scaling law needs a spread of sizes, not ablations of one model
    x, y = np.log(rows["flops"].astype(float)), np.log(100.0 - rows["top1_mean"])
    fit = stats.linregress(x, y)
    half = stats.t.ppf(0.975, len(rows) - 2) * fit.stderr
    return PowerLaw(family, float(np.exp(fit.intercept)), float(fit.slope), float(fit.slope - half),
                    float(fit.slope + half), len(rows))


@dataclass
class RankAgreement:
    kendall: float
    kendall_ci: tuple[float, float]
    spearman: float
    spearman_ci: tuple[float, float]
    n: int


def rank_agreement(table: pd.DataFrame, a: str, b: str, n_boot: int = 2000, seed: int = 0) -> RankAgreement:
    """How well protocol `a` ranks the variants like protocol `b` (bootstrap over variants)."""
    wide = table.pivot_table(index="variant", columns="protocol_name", values="top1_mean").dropna()
    if a not in wide or b not in wide or len(wide) < 3:
        raise AnalysisError(f"rank agreement needs protocols {a!r} and {b!r} on at least 3 variants")
    x, y = wide[a].to_numpy(), wide[b].to_numpy()
    rng = np.random.default_rng(seed)
    ks, ss = [], []
    for _ in range(n_boot):
        idx = rng.integers(0, len(x), len(x))
        if len(set(idx)) < 3:
            continue
        ks.append(stats.kendalltau(x[idx], y[idx]).statistic)
        ss.append(stats.spearmanr(x[idx], y[idx]).statistic)
    ci = lambda v: tuple(float(q) for q in np.nanpercentile(v, [2.5, 97.5]))  # noqa: E731
    return RankAgreement(float(stats.kendalltau(x, y).statistic), ci(ks), float(stats.spearmanr(x, y).statistic),
                         ci(ss), len(x))


def _plot_variants(table: pd.DataFrame, title: str, path: Path) -> None:
    protocols = list(dict.fromkeys(table["protocol_name"]))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * table["variant"].nunique() + 2), 4.2), dpi=150)
    width = 0.8 / len(protocols)
    for k, proto in enumerate(protocols):
        t = table[table["protocol_name"] == proto]
        pos = np.arange(len(t)) + (k - (len(protocols) - 1) / 2) * width
        ax.bar(pos, t["top1_mean"], width * 0.9, yerr=t["top1_std"], capsize=3, label=proto, alpha=0.85)
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
    fig.tight_layout()
    fig.savefig(path)
    fig.savefig(path.with_suffix(".svg"))
    plt.close(fig)


def _plot_scaling(table: pd.DataFrame, fits: list[PowerLaw], title: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=150)
    for fam, marker in (("mobile_former", "o"), ("mobilenet_v3", "s")):
        t = table[table["family"] == fam]
        if t.empty:
            continue
        ax.errorbar(t["flops"] / 1e6, 100 - t["top1_mean"], yerr=t["top1_std"], fmt=marker, capsize=3,
                    label=fam.replace("_", " "))
        fit = next((f for f in fits if f.family == fam), None)
        if fit:
            xs = np.geomspace(t["flops"].min(), t["flops"].max(), 50)
            ax.plot(xs / 1e6, fit.a * xs ** fit.b, "--", lw=1,
                    label=f"fit: error ∝ MAdds^{fit.b:.3f} [{fit.b_low:.3f}, {fit.b_high:.3f}]")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("MAdds (M), log scale")
    ax.set_ylabel("proxy top-1 error (%), log scale")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    fig.savefig(path.with_suffix(".svg"))
    plt.close(fig)


def analyze_study(path: Path, out: Path | None = None) -> tuple[Path, list[Path], str]:
    """Figures and report.md for one study folder; returns (folder, files, headline)."""
    meta, df = load_study(path)
    if df.empty:
        raise AnalysisError(f"{path}: no complete row to analyse yet")
    out = Path(out) if out else Path(path) / "analysis"
    out.mkdir(parents=True, exist_ok=True)
    table = variant_table(df)
    proto = json.loads(df["protocol"].iloc[0])
    desc = (f"{meta.get('study')} ({meta.get('size')}), {df['dataset'].iloc[0]}, "
            f"{proto['epochs']} ep on {proto['data_fraction']:.0%} of train")
    files = [out / "study.png"]
    _plot_variants(table, desc, files[0])
    lines = [f"# Study: {meta.get('study')} ({meta.get('size')})", "", str(meta.get("description", "")).strip(), "",
             f"Dataset {df['dataset'].iloc[0]}; protocol(s): " + ", ".join(
                 f"{n}: {json.loads(p)['epochs']} ep on {json.loads(p)['data_fraction']:.0%}"
                 for n, p in df.groupby('protocol_name')['protocol'].first().items())
             + f"; seeds {sorted(df['seed'].unique().tolist())}.", "", "![study](study.png)", "",
             "| protocol | variant | MAdds (M) | params (M) | top-1 mean (%) | std | seeds |", "|---|---|---|---|---|---|---|"]
    for r in table.itertuples():
        lines.append(f"| {r.protocol_name} | {r.variant} | {r.flops / 1e6:.1f} | {r.params / 1e6:.2f} | "
                     f"{r.top1_mean:.2f} | {r.top1_std:.2f} | {r.seeds} |")
    headline = f"{len(table)} variant rows from {len(df)} complete trainings"
    first = table[table["protocol_name"] == table["protocol_name"].iloc[0]]
    fits = [f for f in (power_law(first, fam) for fam in ("mobile_former", "mobilenet_v3")) if f]
    if fits:
        files.append(out / "scaling.png")
        _plot_scaling(first, fits, desc, files[-1])
        lines += ["", "## Power-law fits (error = a * MAdds^b, 95% interval of b)", "", "![scaling](scaling.png)", "",
                  "| family | b | 95% interval | points |", "|---|---|---|---|"]
        lines += [f"| {f.family} | {f.b:.4f} | [{f.b_low:.4f}, {f.b_high:.4f}] | {f.points} |" for f in fits]
    protocols = list(dict.fromkeys(table["protocol_name"]))
    if len(protocols) == 2:
        ra = rank_agreement(table, protocols[0], protocols[1])
        lines += ["", f"## Rank agreement: {protocols[0]} vs {protocols[1]} ({ra.n} variants, bootstrap 95%)", "",
                  f"- Kendall tau {ra.kendall:.3f} [{ra.kendall_ci[0]:.3f}, {ra.kendall_ci[1]:.3f}]",
                  f"- Spearman rho {ra.spearman:.3f} [{ra.spearman_ci[0]:.3f}, {ra.spearman_ci[1]:.3f}]"]
        headline += f"; Kendall tau {ra.kendall:.3f}, Spearman rho {ra.spearman:.3f}"
    files.append(out / "report.md")
    files[-1].write_text("\n".join(lines) + "\n")
    return out, files, headline
