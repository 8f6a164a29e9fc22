"""Analysis of study folders (`search.py --experiment`): per-variant means with error
bars over seeds, power-law fits of error against MAdds per family, the rank agreement
of two proxy protocols (Kendall tau, Spearman rho, bootstrap intervals), differences
set beside the paper's, and the proxy's comparison next to the published ImageNet one.
A `budgets` study (one search per budget) is merged into one Pareto analysis. One entry
point per study kind (`analyze_variants`, `analyze_searches`, `analyze_calibration`,
`analyze_datasets`), each (folder, its run.json, output folder) -> (folder, files, headline);
mfsearch.studies looks the kind up and calls it."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from ..models import published_top1
from ..records.appended import read_rows
from ..records.rows import to_frame
from ..records.runjson import read_run_json
from .calibration import calibration_lines, fidelity, published_table, reference_protocol
from .datasets import dataset_lines
from .datasets import headline as datasets_headline
from .latency import has_latency, latency_reference
from .load import AnalysisError
from .markdown import num
from .markdown import table as markdown_table
from .report import analyze
from .report import headline as search_headline
from .stats import RankAgreement, nearest_pairs, power_fit, rank_correlations
from .study_figures import plot_comparison, plot_fidelity, plot_rank, plot_scaling, plot_variants
from .truth import TRUTH, protocol_costs, protocol_fidelity, truth_lines


def complete_rows(path: Path) -> pd.DataFrame:
    """Complete rows of a study; from rows.jsonl while the study is still running."""
    table, live = Path(path) / "trials.parquet", Path(path) / "rows.jsonl"
    if live.is_file() and (not table.is_file() or live.stat().st_mtime > table.stat().st_mtime):
        df = to_frame(read_rows(live))
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
    out = out.sort_values(["protocol_name", "variant"], key=lambda col: col.map(order[col.name]))
    return out.reset_index(drop=True)


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
    a, b, (low, high) = power_fit(rows["flops"].to_numpy(float), rows["top1_mean"].to_numpy(float))
    return PowerLaw(family, a, b, low, high, len(rows))


def rank_agreement(table: pd.DataFrame, a: str, b: str, n_boot: int = 2000, seed: int = 0) -> RankAgreement:
    """How well protocol `a` ranks the variants like protocol `b` (bootstrap over variants)."""
    wide = table.pivot_table(index="variant", columns="protocol_name", values="top1_mean").dropna()
    if a not in wide or b not in wide or len(wide) < 3:
        raise AnalysisError(f"rank agreement needs protocols {a!r} and {b!r} on at least 3 variants")
    return rank_correlations(wide[a].to_numpy(), wide[b].to_numpy(), n_boot, seed)


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
    t = t.set_index("variant")
    fam = t["family"]
    rows = []
    for f, m in nearest_pairs(t.loc[fam == "mobile_former", "flops"], t.loc[fam == "mobilenet_v3", "flops"],
                              max_ratio):
        d = next(x for x in differences(first[first["variant"].isin([f, m])], m))
        d.paper = t.at[f, "published"] - t.at[m, "published"]
        rows.append({"mobile_former": f, "mf_flops": t.at[f, "flops"], "mobilenet_v3": m,
                     "mn_flops": t.at[m, "flops"], "proxy_delta": d.delta, "low": d.low, "high": d.high,
                     "published_delta": d.paper, "verdict": d.verdict})
    return pd.DataFrame(rows)


def _interval(low: float, high: float) -> str:
    return "n/a (one seed)" if not np.isfinite(low) else f"[{low:+.2f}, {high:+.2f}]"


def _paper_section(df: pd.DataFrame, paper: dict) -> list[str]:
    deltas = {k: float(v) for k, v in (paper.get("delta") or {}).items()}
    diffs = differences(df, paper["reference"], deltas)
    lines = ["", f"## Against the paper (differences to {paper['reference']}, top-1 points)", "",
             f"Proxy: mean over seeds minus the reference's mean, Welch 95% interval over seeds. "
             f"Paper: {paper['metric']}.", ""]
    return lines + markdown_table(["variant", "proxy Δ", "95% interval", "paper Δ", "verdict"],
                         [[d.variant, f"{d.delta:+.2f}", _interval(d.low, d.high),
                           "—" if d.paper is None else f"{d.paper:+.1f}", d.verdict] for d in diffs])


def _comparison_section(df: pd.DataFrame, t: pd.DataFrame) -> list[str]:
    """`t`: the first protocol's variant table with its `published` column."""
    known = t.dropna(subset=["published"])
    lines = ["", "## The proxy's comparison next to the published ImageNet one", "", "![comparison](comparison.png)",
             ""]
    lines += markdown_table(["variant", "MAdds (M)", "proxy top-1 (%)", "ImageNet top-1, published (%)"],
                   [[r.variant, f"{r.flops / 1e6:.1f}", f"{r.top1_mean:.2f} ± {r.top1_std:.2f}",
                     num(r.published, ".1f", "—")] for r in t.itertuples()])
    pairs = matched_pairs(df)
    if not pairs.empty:
        lines += ["", "Matched pairs (the Mobile-Former preset nearest in MAdds to each published MobileNetV3):", ""]
        lines += markdown_table(["Mobile-Former", "MobileNetV3", "proxy Δ (MF − MNV3)", "95% interval", "published Δ",
                        "verdict"],
                       [[f"{r.mobile_former} ({r.mf_flops / 1e6:.0f}M)", f"{r.mobilenet_v3} ({r.mn_flops / 1e6:.0f}M)",
                         f"{r.proxy_delta:+.2f}", _interval(r.low, r.high), f"{r.published_delta:+.1f}", r.verdict]
                        for r in pairs.itertuples()])
    if len(known) >= 3:
        ra = rank_correlations(known["top1_mean"].to_numpy(float), known["published"].to_numpy(float))
        lines += ["", f"Rank agreement of proxy and published top-1 over the {ra.n} models with a published number "
                  f"(bootstrap 95%): Kendall tau {ra.kendall:.3f} [{ra.kendall_ci[0]:.3f}, {ra.kendall_ci[1]:.3f}], "
                  f"Spearman rho {ra.spearman:.3f} [{ra.spearman_ci[0]:.3f}, {ra.spearman_ci[1]:.3f}]."]
    return lines


def study_rows(path: Path, meta: dict, out: Path) -> pd.DataFrame:
    """A study's complete rows in the study file's variant order, `out` made ready."""
    df = complete_rows(path)
    if df.empty:
        raise AnalysisError(f"{path}: no complete row to analyse yet")
    order = {v: i for i, v in enumerate((meta.get("spec") or {}).get("variants") or {})}
    if order:  # the study file's order, not the order rows happened to finish in (a resume can shuffle it)
        df = df.sort_values("variant", key=lambda col: col.map(order).fillna(len(order)), kind="stable")
    out.mkdir(parents=True, exist_ok=True)
    return df


def analyze_variants(path: Path, meta: dict, out: Path) -> tuple[Path, list[Path], str]:
    """A `variants` study: per-variant table and figures; with `analysis: calibration`, the
    calibration report, and for rows on several datasets, the `datasets` report (`truth` and
    `standard` studies get the standard report)."""
    df = study_rows(path, meta, out)
    if (meta.get("spec") or {}).get("analysis") == "calibration":
        return _calibration(meta, df, out)
    if (meta.get("spec") or {}).get("analysis") == "truth":
        return _truth(meta, df, out)
    if df["dataset"].nunique() > 1:   # a few variants on several datasets (one size of a study may be)
        return _datasets(meta, df, out)
    table = variant_table(df)
    proto = json.loads(df["protocol"].iloc[0])
    desc = (f"{meta.get('study')} ({meta.get('size')}), {df['dataset'].iloc[0]}, "
            f"{proto['epochs']} ep on {proto['data_fraction']:.0%} of train")
    files = plot_variants(table, desc, out, "study")
    lines = [f"# Study: {meta.get('study')} ({meta.get('size')})", "", str(meta.get("description", "")).strip(), "",
             f"Dataset {df['dataset'].iloc[0]}; protocol(s): " + ", ".join(
                 f"{n}: {json.loads(p)['epochs']} ep on {json.loads(p)['data_fraction']:.0%}"
                 for n, p in df.groupby('protocol_name')['protocol'].first().items())
             + f"; seeds {sorted(df['seed'].unique().tolist())}{_devices(df)}.", "", "![study](study.png)", ""]
    lines += markdown_table(["protocol", "variant", "MAdds (M)", "params (M)", "top-1 mean (%)", "std", "seeds"],
                            [[r.protocol_name, r.variant, f"{r.flops / 1e6:.1f}", f"{r.params / 1e6:.2f}",
                              f"{r.top1_mean:.2f}", f"{r.top1_std:.2f}", r.seeds] for r in table.itertuples()])
    headline = f"{len(table)} variant rows from {len(df)} complete trainings"
    first_rows = first_protocol(df)
    first = variant_table(first_rows)
    paper = meta.get("paper")
    if paper and paper["reference"] in set(first_rows["variant"]):
        lines += _paper_section(first_rows, paper)
    published = _published_column(first_rows, first)
    if published.notna().any():
        files += plot_comparison(first, desc, out, "comparison")
        lines += _comparison_section(first_rows, first.assign(published=published))
    fits = [f for f in (power_law(first, fam) for fam in ("mobile_former", "mobilenet_v3")) if f]
    if fits:
        files += plot_scaling(first, fits, desc, out, "scaling")
        lines += ["", "## Power-law fits (error = a * MAdds^b, 95% interval of b)", "", "![scaling](scaling.png)", ""]
        lines += markdown_table(["family", "b", "95% interval", "points"],
                                [[f.family, f"{f.b:.4f}", f"[{f.b_low:.4f}, {f.b_high:.4f}]", f.points] for f in fits])
    protocols = list(dict.fromkeys(table["protocol_name"]))
    if len(protocols) == 2:
        ra = rank_agreement(table, protocols[0], protocols[1])
        files += plot_rank(table, protocols[0], protocols[1], ra, out, "rank")
        lines += ["", f"## Rank agreement: {protocols[0]} vs {protocols[1]} ({ra.n} variants, bootstrap 95%)", "",
                  "![rank](rank.png)", "",
                  f"- Kendall tau {ra.kendall:.3f} [{ra.kendall_ci[0]:.3f}, {ra.kendall_ci[1]:.3f}]",
                  f"- Spearman rho {ra.spearman:.3f} [{ra.spearman_ci[0]:.3f}, {ra.spearman_ci[1]:.3f}]"]
        headline += f"; Kendall tau {ra.kendall:.3f}, Spearman rho {ra.spearman:.3f}"
    files.append(out / "report.md")
    files[-1].write_text("\n".join(lines) + "\n")
    return out, files, headline


def analyze_searches(path: Path, meta: dict, out: Path) -> tuple[Path, list[Path], str]:
    """A `budgets` study: its searches merged into one front (same protocol by construction)."""
    runs, notes = [], []
    for name in meta["searches"]:
        run = path / name
        if not any((run / f).is_file() for f in ("trials.parquet", "baselines.parquet")):
            notes.append(f"{name} has no results yet")
            continue
        runs.append(run)
        status = (read_run_json(run) or {}).get("status")
        if status != "finished":
            notes.append(f"{name} is {status or 'unfinished'}: its tables are from an earlier stop")
    if not runs:
        raise AnalysisError(f"{path}: none of its searches has results yet; run the study first")
    result = analyze(runs, out=out)
    files, line = list(result.files), search_headline(result.runs, result.summary)
    spaces = _by_space(runs)
    if len(spaces) > 1:   # searches over several spaces: each space's front apart, beside the merged one
        box = latency_reference(result.runs) if has_latency(result.runs) else None   # one box: areas compare
        for space, members in spaces.items():
            sub = analyze(members, out=out / space, latency_box=box)
            files += sub.files
            line += f"\n{space}: " + search_headline(sub.runs, sub.summary)
    if notes:
        line += "\nnote: " + "; ".join(notes) + "; rerun the study to finish"
    return result.out_dir, files, line


def _by_space(runs: list[Path]) -> dict[str, list[Path]]:
    """Run folders by the space they searched (run.json's settings; none recorded: the default)."""
    out: dict[str, list[Path]] = {}
    for run in runs:
        space = ((read_run_json(run) or {}).get("settings") or {}).get("space") or {}
        out.setdefault(str(space.get("space", "mobile_former")), []).append(run)
    return out


def analyze_calibration(path: Path, meta: dict, out: Path) -> tuple[Path, list[Path], str]:
    """A `calibration` study: every protocol's ranking against published top-1."""
    return _calibration(meta, study_rows(path, meta, out), out)


def _calibration(meta: dict, df: pd.DataFrame, out: Path) -> tuple[Path, list[Path], str]:
    configs = df.groupby("variant")["config"].first().to_dict()
    published = published_table(list(dict.fromkeys(df["variant"])), configs)
    table = fidelity(df, published)
    protocols = {n: json.loads(p) for n, p in df.groupby("protocol_name", sort=False)["protocol"].first().items()}
    by_name = {f.protocol: f for f in table}
    madds_tau = by_name["madds"].kendall if "madds" in by_name else None
    files = plot_fidelity(table, madds_tau, out)
    lines = [f"# Study: {meta.get('study')} ({meta.get('size')})", "", str(meta.get("description", "")).strip(), "",
             f"Dataset {df['dataset'].iloc[0]}; {df['variant'].nunique()} variants, seeds "
             f"{sorted(df['seed'].unique().tolist())}, {len(df)} complete rows{_devices(df)}.", "",
             "![fidelity](fidelity.png)", ""]
    lines += calibration_lines(df, table, published, protocols)
    files.append(out / "report.md")
    files[-1].write_text("\n".join(lines) + "\n")
    best = reference_protocol(table)
    line = f"{len(table)} protocols over up to {max(f.n for f in table)} published models"
    if best:
        line += f"; best trained: {best.protocol} (Kendall tau {best.kendall:.3f})"
    if madds_tau is not None:
        line += f"; MAdds alone: {madds_tau:.3f}"
    return out, files, line


def analyze_truth(path: Path, meta: dict, out: Path) -> tuple[Path, list[Path], str]:
    """A `truth` study: every cheap protocol's ranking and pick against long training."""
    return _truth(meta, study_rows(path, meta, out), out)


def _truth(meta: dict, df: pd.DataFrame, out: Path) -> tuple[Path, list[Path], str]:
    table = protocol_fidelity(df)
    madds = next((f.kendall for f in table if f.protocol == "madds"), None)
    files = plot_fidelity(table, madds, out, against="truth (long training, same data)", per="run",
                          minutes="median wall minutes", reference_cost=protocol_costs(df)[0].get(TRUTH))
    lines = [f"# Study: {meta.get('study')} ({meta.get('size')})", "", str(meta.get("description", "")).strip(), "",
             f"Dataset {df['dataset'].iloc[0]}; {df['variant'].nunique()} architectures, "
             f"{len(df)} complete rows{_devices(df)}.", "", "![fidelity](fidelity.png)", ""]
    section, line = truth_lines(df, table)
    lines += section
    files.append(out / "report.md")
    files[-1].write_text("\n".join(lines) + "\n")
    return out, files, line


def analyze_datasets(path: Path, meta: dict, out: Path) -> tuple[Path, list[Path], str]:
    """A `datasets` study (the same variants on several datasets): does the cheap one rank like the real one?"""
    return _datasets(meta, study_rows(path, meta, out), out)


def _devices(df: pd.DataFrame) -> str:
    """'; trained on cuda:0': the devices the rows recorded, and how many recorded none (rows
    from before they did); '' when none did."""
    recorded = df["device"].dropna().astype(str) if "device" in df else pd.Series(dtype=str)
    if recorded.empty:
        return ""
    missing = len(df) - len(recorded)
    return f"; trained on {', '.join(sorted(set(recorded)))}" + (f" ({missing} rows say nothing)" if missing else "")


def _datasets(meta: dict, df: pd.DataFrame, out: Path) -> tuple[Path, list[Path], str]:
    by_data = df.assign(protocol_name=df["dataset"])     # datasets take the place of protocols in the tables
    first = first_protocol(df)
    table = variant_table(first.assign(protocol_name=first["dataset"]))
    names = list(dict.fromkeys(table["protocol_name"]))
    files = plot_variants(table, f"{meta.get('study')}: top-1 per dataset", out, "study")
    lines = [f"# Study: {meta.get('study')} ({meta.get('size')})", "", str(meta.get("description", "")).strip(), "",
             f"Datasets {', '.join(names)}; protocol(s) {', '.join(dict.fromkeys(df['protocol_name']))}; "
             f"{len(df)} complete rows{_devices(df)}.", "", "![study](study.png)"]
    section, summary = dataset_lines(df)
    lines += section
    shared = table.pivot_table(index="variant", columns="protocol_name", values="top1_mean").dropna()
    if len(names) >= 2 and len(shared) >= 3:
        ra = rank_agreement(table, names[0], names[1])
        files += plot_rank(table, names[0], names[1], ra, out, "rank")
        lines += ["", "![rank](rank.png)"]
    lines += ["", "## Top-1 per variant and dataset", ""]
    lines += markdown_table(["dataset", "protocol", "variant", "MAdds (M)", "top-1 mean (%)", "std", "seeds"],
                            [[r.protocol_name, p, r.variant, f"{r.flops / 1e6:.1f}", f"{r.top1_mean:.2f}",
                              f"{r.top1_std:.2f}", r.seeds]
                             for p, rows in df.groupby("protocol_name", sort=False)
                             for r in variant_table(by_data[by_data.index.isin(rows.index)]).itertuples()])
    files.append(out / "report.md")
    files[-1].write_text("\n".join(lines) + "\n")
    return out, files, datasets_headline(summary)
