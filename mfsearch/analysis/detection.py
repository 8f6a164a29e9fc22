"""Report of a detection study (`kind: detection`): AP per backbone and initialisation with
intervals over seeds, Mobile-Former minus its MobileNetV3 partner seed by seed, AP against
backbone MAdds, set beside the paper's COCO result."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

from ..records.appended import read_rows
from .figures import family_style
from .load import AnalysisError
from .markdown import interval, num
from .markdown import table as markdown_table


def detection_rows(path: Path) -> pd.DataFrame:
    rows_path = Path(path) / "rows.jsonl"
    if not rows_path.is_file():
        raise AnalysisError(f"{path} has no rows.jsonl yet; run the study first")
    df = pd.DataFrame(read_rows(rows_path))
    if df.empty or (df["status"] == "complete").sum() == 0:
        raise AnalysisError(f"{path}: no complete detection run to analyse yet")
    return df[df["status"] == "complete"].reset_index(drop=True)


def t_interval(values: np.ndarray) -> tuple[float, float] | None:
    """95% t-interval of the mean; None below two values."""
    values = np.asarray(values, float)
    if len(values) < 2:
        return None
    ci = stats.ttest_1samp(values, 0.0).confidence_interval(0.95)
    return float(ci.low), float(ci.high)


def summary_table(df: pd.DataFrame) -> pd.DataFrame:
    out = []
    for (backbone, init), g in df.groupby(["backbone", "init"], sort=False):
        out.append({"backbone": backbone, "init": init, "family": g["family"].iloc[0], "seeds": len(g),
                    "AP": g["AP"].mean(), "AP_ci": t_interval(g["AP"]), "AP50": g["AP50"].mean(),
                    "AP75": g["AP75"].mean(), "backbone_MAdds": g["backbone_flops"].iloc[0],
                    "total_MAdds": g["total_flops"].iloc[0], "backbone_params": g["backbone_params"].iloc[0],
                    "wall_s": g["wall_time"].mean(),
                    "pretrain_top1": pd.to_numeric(g["pretrain_top1"], errors="coerce").mean()})
    return pd.DataFrame(out)


def pair_differences(df: pd.DataFrame, pairs: list[list[str]]) -> list[dict]:
    """AP(Mobile-Former) - AP(partner) per shared seed, per initialisation."""
    out = []
    for mf, base in pairs:
        for init in df["init"].unique():
            a = df[(df["backbone"] == mf) & (df["init"] == init)].set_index("seed")["AP"]
            b = df[(df["backbone"] == base) & (df["init"] == init)].set_index("seed")["AP"]
            seeds = sorted(set(a.index) & set(b.index))
            if not seeds:
                continue
            d = (a[seeds] - b[seeds]).to_numpy(float)
            ci = t_interval(d)
            verdict = "n/a (one seed)" if ci is None else "Mobile-Former ahead" if ci[0] > 0 else \
                "MobileNetV3 ahead" if ci[1] < 0 else "within noise"
            out.append({"pair": f"{mf} - {base}", "init": init, "seeds": len(seeds), "delta": float(d.mean()),
                        "ci": ci, "verdict": verdict})
    return out


def _plot(table: pd.DataFrame, df: pd.DataFrame, out: Path, title: str) -> Path:
    """AP (seeds faint, mean with its 95% interval) against backbone MAdds and against wall time."""
    fig, axes = plt.subplots(1, 2, figsize=(11.5, 4.4), sharey=True)
    markers = {"scratch": "o", "proxy": "^"}
    for ax, (col, xlabel) in zip(axes, [("backbone_flops", "backbone MAdds (M) at the detection input size"),
                                        ("wall_time", "wall time per run (s), training and evaluation")]):
        for r in table.itertuples():
            g = df[(df["backbone"] == r.backbone) & (df["init"] == r.init)]
            color, marker = family_style(r.family)[1], markers.get(r.init, "o")
            x = g[col].to_numpy(float) / (1e6 if col == "backbone_flops" else 1)
            ax.scatter(x, g["AP"], color=color, alpha=0.35, s=14, marker=marker)
            err = None if r.AP_ci is None else [[r.AP - r.AP_ci[0]], [r.AP_ci[1] - r.AP]]
            ax.errorbar([x.mean()], [r.AP], yerr=err, fmt=marker, color=color, capsize=4, ms=8,
                        mfc="white" if r.init == "scratch" else color, label=f"{r.backbone} ({r.init})")
        ax.set_xlabel(xlabel)
    axes[0].set_ylabel("COCO AP (%) on the test split")
    axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = out / "detection.png"
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path


def analyze_detection(path: Path, meta: dict, out: Path) -> tuple[Path, list[Path], str]:
    df = detection_rows(path)
    spec = meta.get("spec") or {}
    order = {b: i for i, b in enumerate(spec.get("backbones") or [])}
    df = df.sort_values("backbone", key=lambda c: c.map(order).fillna(len(order)), kind="stable")
    table = summary_table(df)
    proto, data = df["protocol"].iloc[0], df["data"].iloc[0]
    setting = (f"{proto['kind']} on {df['dataset'].iloc[0]} ({data.get('n_train', '?')} train / "
               f"{data.get('n_test', '?')} test images), {proto['epochs']} epoch(s) at {proto['image_size']} px, "
               f"FPN {proto['fpn_channels']} channels")
    out.mkdir(parents=True, exist_ok=True)
    fig = _plot(table, df, out, setting)
    pairs = pair_differences(df, spec.get("pairs") or [])
    lines = [f"# Detection study: {meta.get('study')} ({meta.get('size')})", "",
             str(meta.get("description", "")).strip(),
             "", f"Setting: {setting}; seeds {sorted(df['seed'].unique().tolist())}. MAdds by fvcore at "
             f"{proto['image_size']}x{proto['image_size']} (box decoding and NMS not counted); wall time per run "
             "includes evaluation.", "", "![detection](detection.png)", ""]
    lines += markdown_table(
        ["backbone", "init", "seeds", "AP", "95% CI", "AP50", "AP75", "backbone MAdds (M)", "detector MAdds (M)",
         "backbone params (M)", "wall (s)", "pretrain top-1 (%)"],
        [[r.backbone, r.init, r.seeds, num(r.AP), interval(r.AP_ci, ".2f"), num(r.AP50), num(r.AP75),
          f"{r.backbone_MAdds / 1e6:.1f}", f"{r.total_MAdds / 1e6:.1f}", f"{r.backbone_params / 1e6:.2f}",
          f"{r.wall_s:.0f}", num(r.pretrain_top1)] for r in table.itertuples()])
    if pairs:
        lines += ["", "## Mobile-Former minus its MobileNetV3 partner (AP points, paired by seed)", ""]
        lines += markdown_table(["pair", "init", "seeds", "delta AP", "95% CI", "verdict"],
                                [[p["pair"], p["init"], p["seeds"], f"{p['delta']:+.2f}", interval(p["ci"]),
                                  p["verdict"]] for p in pairs])
    lines += ["", *paper_lines(spec.get("paper") or {}, pairs, str(df["dataset"].iloc[0]))]
    report = out / "report.md"
    report.write_text("\n".join(lines) + "\n")
    best = table.sort_values("AP", ascending=False).iloc[0]
    return out, [fig, report], f"best AP {best.AP:.2f} ({best.backbone}, {best.init}); {len(df)} runs"


def paper_lines(paper: dict, pairs: list[dict], dataset: str) -> list[str]:
    """What the paper reports beside what this study measured, and what cannot be compared."""
    if not paper:
        return []
    ref = float(paper.get("delta_AP", 0))
    lines = ["## Against the paper", "", f"The paper: Mobile-Former {ref:+.1f} AP over MobileNetV3 "
             f"({paper.get('setting', 'as published')})."]
    for p in pairs:
        sign = "no difference, unlike" if p["delta"] == 0 else \
            "same sign as" if np.sign(p["delta"]) == np.sign(ref) else "opposite sign to"
        lines.append(f"- {p['pair']} ({p['init']}): {p['delta']:+.2f} AP, {interval(p['ci'])}, {p['verdict']}; "
                     f"{sign} the paper's difference.")
    data = "the built-in synthetic set (five shape classes), not COCO" if dataset == "shapes" else \
        f"{dataset}, not the paper's COCO set"
    lines += ["", f"Not comparable: absolute AP ({data}), the schedule (a few epochs, not the paper's full one), "
              "the input size, and the initialisation (a short classification proxy or none, not ImageNet). Only "
              "the sign and rough size of the family difference can be set beside the paper's."]
    return lines
