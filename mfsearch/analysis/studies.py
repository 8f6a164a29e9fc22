"""Analysis of study folders (`search.py --experiment`): per-variant means with error
bars over seeds, power-law fits of error against MAdds per family, the rank agreement
of two proxy protocols (Kendall tau, Spearman rho, bootstrap intervals), differences
set beside the paper's, and the proxy's comparison next to the published ImageNet one.
A `budgets` study (one search per budget) is merged into one Pareto analysis."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

from .load import AnalysisError  # noqa: E402
from ..search.results import to_frame  # noqa: E402
from .calibration import calibration_lines, fidelity, published_table  # noqa: E402
from .figures import plot_fidelity  # noqa: E402
from .published import published_top1  # noqa: E402


def is_study_dir(path: Path) -> bool:
    try:
        return "study" in json.loads((Path(path) / "run.json").read_text())
    except (OSError, ValueError):
        return False


def complete_rows(path: Path) -> pd.DataFrame:
    """Complete rows of a study; from rows.jsonl while the study is still running."""
    table, live = Path(path) / "trials.parquet", Path(path) / "rows.jsonl"
    if live.is_file() and (not table.is_file() or live.stat().st_mtime > table.stat().st_mtime):
        df = to_frame(json.loads(line) for line in live.read_text().splitlines() if line.strip())
    elif table.is_file():
        df = pd.read_parquet(table)
    else:
        raise AnalysisError(f"{path}: no trials.parquet yet; run the study first")
    return df[df["status"] == "complete"].copy()


def variant_table(df: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard deviation and count of final top-1 per (protocol, variant), both in file order."""
    order = {c: {v: i for i, v in enumerate(dict.fromkeys(df[c]))} for c in ("protocol_name", "variant")}
    g = df.groupby(["protocol_name", "variant", "family"], sort=False)
    out = g.agg(flops=("flops", "first"), params=("params", "first"), top1_mean=("final_top1", "mean"),
                top1_std=("final_top1", "std"), seeds=("final_top1", "size")).reset_index()
    out["top1_std"] = out["top1_std"].fillna(0.0)
    return out.sort_values(["protocol_name", "variant"], key=lambda col: col.map(order[col.name])).reset_index(drop=True)


def first_protocol(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of the study's first protocol (file order): the one single-protocol sections use."""
    return df[df["protocol_name"] == df["protocol_name"].iloc[0]]


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
    return rank_correlations(wide[a].to_numpy(), wide[b].to_numpy(), n_boot, seed)


def rank_correlations(x: np.ndarray, y: np.ndarray, n_boot: int = 2000, seed: int = 0) -> RankAgreement:
    """Kendall tau and Spearman rho of paired scores, with percentile bootstrap intervals."""
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


@dataclass
class Difference:
    """Mean top-1 of `variant` minus that of `reference`, Welch 95% interval over seeds."""
    variant: str
    delta: float
    low: float
    high: float
    paper: float | None

    @property
    def verdict(self) -> str:
        if not np.isfinite(self.low):
            return "n/a (one seed)"
        if self.low <= 0 <= self.high:
            return "within seed noise"
        sign = "gain" if self.delta > 0 else "loss"
        if self.paper is None or self.paper == 0:
            return f"resolved {sign}"
        return f"resolved {sign}, {'same' if np.sign(self.paper) == np.sign(self.delta) else 'opposite'} sign"


def differences(df: pd.DataFrame, reference: str, paper: dict[str, float] | None = None) -> list[Difference]:
    """Every variant against `reference` under the first protocol, seeds as samples."""
    first = first_protocol(df)
    ref = first.loc[first["variant"] == reference, "final_top1"].to_numpy(float)
    if len(ref) == 0:
        raise AnalysisError(f"reference variant {reference!r} has no complete row")
    out = []
    for variant in dict.fromkeys(first["variant"]):
        if variant == reference:
            continue
        v = first.loc[first["variant"] == variant, "final_top1"].to_numpy(float)
        delta = float(v.mean() - ref.mean())
        low = high = float("nan")
        if len(v) > 1 and len(ref) > 1:
            ci = stats.ttest_ind(v, ref, equal_var=False).confidence_interval(0.95)
            low, high = float(ci.low), float(ci.high)
        out.append(Difference(variant, delta, low, high, (paper or {}).get(variant)))
    return out


def _published_column(df: pd.DataFrame, table: pd.DataFrame) -> pd.Series:
    if "config" not in df:
        return table["variant"].map(published_top1)
    configs = df.groupby("variant")["config"].first()
    return table["variant"].map(lambda v: published_top1(v, configs.get(v)))


def matched_pairs(df: pd.DataFrame, max_ratio: float = 1.25) -> pd.DataFrame:
    """Each published MobileNetV3 beside the Mobile-Former preset nearest in MAdds (within
    `max_ratio`): the paper's "more accurate at the same cost", one pair at a time."""
    first = first_protocol(df)
    t = variant_table(first)
    t["published"] = _published_column(first, t)
    t = t.dropna(subset=["published"])
    mf, mn = t[t["family"] == "mobile_former"], t[t["family"] == "mobilenet_v3"]
    rows = []
    for m in mn.itertuples():
        if mf.empty:
            break
        ratio = np.abs(np.log(mf["flops"].to_numpy(float) / m.flops))
        if np.exp(ratio.min()) > max_ratio:
            continue
        f = mf.iloc[int(np.argmin(ratio))]
        d = next(x for x in differences(first[first["variant"].isin([f["variant"], m.variant])], m.variant))
        d.paper = f["published"] - m.published
        rows.append({"mobile_former": f["variant"], "mf_flops": f["flops"], "mobilenet_v3": m.variant,
                     "mn_flops": m.flops, "proxy_delta": d.delta, "low": d.low, "high": d.high,
                     "published_delta": d.paper, "verdict": d.verdict})
    return pd.DataFrame(rows)


def _plot_variants(table: pd.DataFrame, title: str, path: Path) -> None:
    protocols = list(dict.fromkeys(table["protocol_name"]))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * table["variant"].nunique() + 2), 4.2), dpi=150)
    width = 0.8 / len(protocols)
    for k, proto in enumerate(protocols):
        t = table[table["protocol_name"] == proto]
        pos = np.arange(len(t)) + (k - (len(protocols) - 1) / 2) * width
        color = None
        if len(protocols) == 1:  # one protocol: colour by family, as in every other figure
            from .figures import MF_COLOR, MNV3_COLOR
            color = [MF_COLOR if f == "mobile_former" else MNV3_COLOR for f in t["family"]]
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
    fig.tight_layout()
    fig.savefig(path)
    fig.savefig(path.with_suffix(".svg"))
    plt.close(fig)


def _plot_scaling(table: pd.DataFrame, fits: list[PowerLaw], title: str, path: Path) -> None:
    from matplotlib.ticker import FuncFormatter, NullFormatter

    from .figures import FAMILY_NAMES, MF_COLOR, MNV3_COLOR, _log_mega_axis
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=150)
    for fam, marker, color in (("mobile_former", "o", MF_COLOR), ("mobilenet_v3", "s", MNV3_COLOR)):
        t = table[table["family"] == fam]
        if t.empty:
            continue
        ax.errorbar(t["flops"] / 1e6, 100 - t["top1_mean"], yerr=t["top1_std"], fmt=marker, color=color, capsize=3,
                    label=FAMILY_NAMES[fam])
        fit = next((f for f in fits if f.family == fam), None)
        if fit:
            xs = np.geomspace(t["flops"].min(), t["flops"].max(), 50)
            ax.plot(xs / 1e6, fit.a * xs ** fit.b, "--", color=color, lw=1,
                    label=f"fit: error ∝ MAdds^{fit.b:.3f} [{fit.b_low:.3f}, {fit.b_high:.3f}]")
    _log_mega_axis(ax)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.tick_params(axis="y", which="minor", labelsize=8)
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("MAdds (M), log scale")
    ax.set_ylabel("proxy top-1 error (%), log scale")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    fig.savefig(path.with_suffix(".svg"))
    plt.close(fig)


def _plot_comparison(table: pd.DataFrame, title: str, path: Path) -> None:
    """Proxy top-1 against MAdds beside the published ImageNet figure, same axes style."""
    from .figures import MF_COLOR, MNV3_COLOR, _log_mega_axis, _published
    fig, (proxy, paper) = plt.subplots(1, 2, figsize=(11, 4.4), dpi=150)
    groups = [("mobile_former", MF_COLOR, "o-", "Mobile-Former presets"),
              ("_small_", MNV3_COLOR, "s--", "MobileNetV3-Small"), ("_large_", MNV3_COLOR, "s:", "MobileNetV3-Large")]
    for key, color, style, label in groups:
        t = table[table["family"] == key] if key == "mobile_former" else table[table["variant"].str.contains(key)]
        if t.empty:
            continue
        t = t.sort_values("flops")
        proxy.errorbar(t["flops"] / 1e6, t["top1_mean"], yerr=t["top1_std"], fmt=style, color=color, ms=5,
                       capsize=3, label=label)
    _log_mega_axis(proxy)
    proxy.set_xlabel("MAdds (M), log scale")
    proxy.set_ylabel("proxy top-1 (%), mean ± std over seeds")
    proxy.set_title(title)
    proxy.legend(loc="upper left")
    _published(paper)
    paper.set_title("ImageNet (published), not this proxy")
    fig.tight_layout()
    fig.savefig(path)
    fig.savefig(path.with_suffix(".svg"))
    plt.close(fig)


def _plot_rank(table: pd.DataFrame, a: str, b: str, ra: RankAgreement, path: Path) -> None:
    """One point per variant: its top-1 under protocol a against protocol b."""
    wide = table.pivot_table(index="variant", columns="protocol_name", values="top1_mean").dropna()
    fig, ax = plt.subplots(figsize=(5.6, 4.8), dpi=150)
    ax.scatter(wide[a], wide[b], s=28)
    prefix = os.path.commonprefix(list(wide.index)) if len(wide) > 1 else ""
    for name, r in wide.iterrows():  # short labels (the shared prefix dropped) keep neighbours legible
        ax.annotate(name[len(prefix):] or name, (r[a], r[b]), xytext=(3, 3), textcoords="offset points", fontsize=8)
    ax.margins(0.08)
    if prefix:
        ax.text(0.98, 0.02, f"labels: {prefix}NN", transform=ax.transAxes, ha="right", fontsize=8, color="0.4")
    ax.set_xlabel(f"top-1 under {a} (%)")
    ax.set_ylabel(f"top-1 under {b} (%)")
    ax.set_title(f"Kendall tau {ra.kendall:.2f} [{ra.kendall_ci[0]:.2f}, {ra.kendall_ci[1]:.2f}], "
                 f"Spearman rho {ra.spearman:.2f} [{ra.spearman_ci[0]:.2f}, {ra.spearman_ci[1]:.2f}]\n"
                 f"{ra.n} variants, bootstrap 95% intervals", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    fig.savefig(path.with_suffix(".svg"))
    plt.close(fig)


def _interval(low: float, high: float) -> str:
    return "n/a (one seed)" if not np.isfinite(low) else f"[{low:+.2f}, {high:+.2f}]"


def _paper_section(df: pd.DataFrame, paper: dict) -> list[str]:
    deltas = {k: float(v) for k, v in (paper.get("delta") or {}).items()}
    diffs = differences(df, paper["reference"], deltas)
    lines = ["", f"## Against the paper (differences to {paper['reference']}, top-1 points)", "",
             f"Proxy: mean over seeds minus the reference's mean, Welch 95% interval over seeds. "
             f"Paper: {paper['metric']}.", "",
             "| variant | proxy Δ | 95% interval | paper Δ | verdict |", "|---|---|---|---|---|"]
    for d in diffs:
        pap = "—" if d.paper is None else f"{d.paper:+.1f}"
        lines.append(f"| {d.variant} | {d.delta:+.2f} | {_interval(d.low, d.high)} | {pap} | {d.verdict} |")
    return lines


def _comparison_section(df: pd.DataFrame, t: pd.DataFrame) -> list[str]:
    """`t`: the first protocol's variant table with its `published` column."""
    known = t.dropna(subset=["published"])
    lines = ["", "## The proxy's comparison next to the published ImageNet one", "", "![comparison](comparison.png)",
             "", "| variant | MAdds (M) | proxy top-1 (%) | ImageNet top-1, published (%) |", "|---|---|---|---|"]
    for r in t.itertuples():
        pub = "—" if np.isnan(r.published) else f"{r.published:.1f}"
        lines.append(f"| {r.variant} | {r.flops / 1e6:.1f} | {r.top1_mean:.2f} ± {r.top1_std:.2f} | {pub} |")
    pairs = matched_pairs(df)
    if not pairs.empty:
        lines += ["", "Matched pairs (the Mobile-Former preset nearest in MAdds to each published MobileNetV3):", "",
                  "| Mobile-Former | MobileNetV3 | proxy Δ (MF − MNV3) | 95% interval | published Δ | verdict |",
                  "|---|---|---|---|---|---|"]
        for r in pairs.itertuples():
            lines.append(f"| {r.mobile_former} ({r.mf_flops / 1e6:.0f}M) | {r.mobilenet_v3} ({r.mn_flops / 1e6:.0f}M) "
                         f"| {r.proxy_delta:+.2f} | {_interval(r.low, r.high)} | {r.published_delta:+.1f} | {r.verdict} |")
    if len(known) >= 3:
        ra = rank_correlations(known["top1_mean"].to_numpy(float), known["published"].to_numpy(float))
        lines += ["", f"Rank agreement of proxy and published top-1 over the {ra.n} models with a published number "
                  f"(bootstrap 95%): Kendall tau {ra.kendall:.3f} [{ra.kendall_ci[0]:.3f}, {ra.kendall_ci[1]:.3f}], "
                  f"Spearman rho {ra.spearman:.3f} [{ra.spearman_ci[0]:.3f}, {ra.spearman_ci[1]:.3f}]."]
    return lines


def analyze_study(path: Path, out: Path | None = None) -> tuple[Path, list[Path], str]:
    """Figures and report.md for one study folder; returns (folder, files, headline)."""
    path = Path(path)
    out = Path(out) if out else path / "analysis"
    meta = json.loads((path / "run.json").read_text())
    if meta.get("searches"):
        return _analyze_searches(path, meta, out)
    df = complete_rows(path)
    if df.empty:
        raise AnalysisError(f"{path}: no complete row to analyse yet")
    out.mkdir(parents=True, exist_ok=True)
    if (meta.get("spec") or {}).get("analysis") == "calibration":
        return _analyze_calibration(meta, df, out)
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
    first_rows = first_protocol(df)
    first = variant_table(first_rows)
    paper = meta.get("paper")
    if paper and paper["reference"] in set(first_rows["variant"]):
        lines += _paper_section(first_rows, paper)
    published = _published_column(first_rows, first)
    if published.notna().any():
        files.append(out / "comparison.png")
        _plot_comparison(first, desc, files[-1])
        lines += _comparison_section(first_rows, first.assign(published=published))
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
        files.append(out / "rank.png")
        _plot_rank(table, protocols[0], protocols[1], ra, files[-1])
        lines += ["", f"## Rank agreement: {protocols[0]} vs {protocols[1]} ({ra.n} variants, bootstrap 95%)", "",
                  "![rank](rank.png)", "",
                  f"- Kendall tau {ra.kendall:.3f} [{ra.kendall_ci[0]:.3f}, {ra.kendall_ci[1]:.3f}]",
                  f"- Spearman rho {ra.spearman:.3f} [{ra.spearman_ci[0]:.3f}, {ra.spearman_ci[1]:.3f}]"]
        headline += f"; Kendall tau {ra.kendall:.3f}, Spearman rho {ra.spearman:.3f}"
    files.append(out / "report.md")
    files[-1].write_text("\n".join(lines) + "\n")
    return out, files, headline


def _analyze_searches(path: Path, meta: dict, out: Path) -> tuple[Path, list[Path], str]:
    """A `budgets` study: its searches merged into one front (same protocol by construction)."""
    from .report import analyze, headline
    runs, notes = [], []
    for name in meta["searches"]:
        run = path / name
        if not any((run / f).is_file() for f in ("trials.parquet", "baselines.parquet")):
            notes.append(f"{name} has no results yet")
            continue
        runs.append(run)
        status = json.loads((run / "run.json").read_text()).get("status")
        if status != "finished":
            notes.append(f"{name} is {status or 'unfinished'}: its tables are from an earlier stop")
    if not runs:
        raise AnalysisError(f"{path}: none of its searches has results yet; run the study first")
    result = analyze(runs, out=out)
    line = headline(result.runs, result.summary)
    if notes:
        line += "\nnote: " + "; ".join(notes) + "; rerun the study to finish"
    return result.out_dir, result.files, line


def _analyze_calibration(meta: dict, df: pd.DataFrame, out: Path) -> tuple[Path, list[Path], str]:
    """A proxy-calibration study: every protocol's ranking against published top-1."""
    configs = df.groupby("variant")["config"].first().to_dict()
    published = published_table(list(dict.fromkeys(df["variant"])), configs)
    table = fidelity(df, published)
    protocols = {n: json.loads(p) for n, p in df.groupby("protocol_name", sort=False)["protocol"].first().items()}
    by_name = {f.protocol: f for f in table}
    madds_tau = by_name["madds"].kendall if "madds" in by_name else None
    files = plot_fidelity(table, madds_tau, out)
    lines = [f"# Study: {meta.get('study')} ({meta.get('size')})", "", str(meta.get("description", "")).strip(), "",
             f"Dataset {df['dataset'].iloc[0]}; {df['variant'].nunique()} variants, seeds "
             f"{sorted(df['seed'].unique().tolist())}, {len(df)} complete rows.", "", "![fidelity](fidelity.png)", ""]
    lines += calibration_lines(df, table, published, protocols)
    files.append(out / "report.md")
    files[-1].write_text("\n".join(lines) + "\n")
    best = max((f for f in table if f.kind == "trained"), key=lambda f: f.kendall, default=None)
    headline = f"{len(table)} protocols over {table[0].n} published models"
    if best:
        headline += f"; best trained: {best.protocol} (Kendall tau {best.kendall:.3f})"
    if madds_tau is not None:
        headline += f"; MAdds alone: {madds_tau:.3f}"
    return out, files, headline
