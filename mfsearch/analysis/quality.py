"""Search quality: each search arm's pick under long training (a `search_quality` study).

Per dataset, one line per search (arm, seed): what it picked (MAdds, the band's fill), the
top-1 it picked by, the pick's truth top-1, its regret against the best truth of a reference
set of the same band (a `truth` study's folder, trained under the same truth protocol), how
many of that set it beats (regret alone cannot tell a near miss of a lucky best from a poor
pick), the pick's lead over that set's best MobileNetV3, and the CPU minutes the search
trained for.
Per arm: the mean truth and regret over seeds, and whether two seeds gave the same answer
(cost within 10%, truth within 1 point).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from ..records.appended import read_rows
from ..records.rows import device_kind, to_frame
from ..records.runjson import read_run_json
from .load import AnalysisError
from .markdown import num, table

SAME_COST, SAME_TRUTH = 0.10, 1.0   # two picks are the same answer within these


def search_compute(folder: Path) -> float:
    """CPU minutes a search spent training (trials and finalists; cached baselines are shared)."""
    total = 0.0
    for name in ("trials.csv", "confirm.csv"):
        if (folder / name).is_file():
            total += float(pd.read_csv(folder / name)["wall_time"].fillna(0).sum())
    return total / 60


def _shown(folder: str) -> str:
    """`folder` relative to the working directory when it lies below it (a report read on
    another machine should not name this one's absolute paths)."""
    rel = os.path.relpath(folder)
    return folder if rel.startswith("..") else rel


def device_kinds(df: pd.DataFrame) -> set[str]:
    """The kinds of device the rows trained on ('cpu', 'cuda')."""
    return {device_kind(d) for d in (df["device"] if "device" in df else [None] * len(df))}


def reference_truth(folder: str | None, dataset: str, protocol: str,
                    devices: set[str] | None = None) -> tuple[pd.Series, pd.Series, str]:
    """(truth per variant, family per variant, note) of a truth study's rows on `dataset`
    under the same truth `protocol` (JSON); empty series and the reason where there is none.
    The note says so when the reference trained on other kinds of device than `devices`
    (the picks'): a GPU trains under bf16 autocast, so the regret then mixes two numerics."""
    empty = pd.Series(dtype=float), pd.Series(dtype=str)
    if not folder:
        return *empty, "no reference set named for this dataset"
    rows = Path(folder) / "rows.jsonl"
    if not rows.is_file():
        return *empty, f"reference {_shown(folder)} has no rows.jsonl yet"
    df = to_frame(read_rows(rows))
    df = df[(df["protocol_name"] == "truth") & (df["dataset"] == dataset) & (df["status"] == "complete")]
    same = df[df["protocol"].map(lambda p: json.loads(p) == json.loads(protocol))]
    if same.empty:
        why = "trained under another truth protocol" if len(df) else "has no truth rows yet"
        return *empty, f"reference {_shown(folder)} {why}: no regret is computed"
    truth = same.groupby("variant")["final_top1"].mean()
    planned = reference_size(Path(folder))
    if planned and len(truth) < planned:   # a set's best so far would flatter every regret
        return *empty, (f"reference {_shown(folder)} has {len(truth)} of its {planned} architectures under truth so "
                        "far: no regret until that study finishes")
    note = f"reference: {len(truth)} architectures of {_shown(folder)}"
    theirs = device_kinds(same)
    if devices and theirs != devices:
        note += (f"; the picks trained on {'/'.join(sorted(devices))}, the reference on {'/'.join(sorted(theirs))}: "
                 "the regret compares two devices' numerics")
    return truth, same.groupby("variant")["family"].first(), note


def reference_size(folder: Path) -> int | None:
    """How many architectures a truth study's file names (its variants and random draws, from
    its run.json), or None where it does not say."""
    spec = (read_run_json(folder) or {}).get("spec") or {}
    n = len(spec.get("variants") or {}) + int((spec.get("sample") or {}).get("count", 0))
    return n or None


def pick_table(path: Path, rows: pd.DataFrame, meta: dict) -> pd.DataFrame:
    """One line per search: its pick's cost, chosen-by top-1, truth and training minutes."""
    budget = float(meta.get("budget") or 0)
    out = []
    for _, r in rows.iterrows():
        folder = path / "searches" / f"{r['dataset']}-{r['variant']}"
        best = json.loads((folder / "best.json").read_text()) if (folder / "best.json").is_file() else {}
        chosen = (best.get("confirmed") or {}).get("top1_mean", best.get("final_top1"))
        out.append({"dataset": r["dataset"], "arm": r["arm"], "seed": int(r["search_seed"]),
                    "madds": r["flops"] / 1e6, "fill": r["flops"] / budget if budget else None,
                    "chosen_top1": chosen, "truth": r["final_top1"], "search_min": search_compute(folder),
                    "truth_of": r.get("truth_of")})
    return pd.DataFrame(out)


def arm_summary(picks: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, arm): mean truth and regret over seeds, and whether the seeds agree."""
    def agree(g: pd.DataFrame) -> bool | None:
        if len(g) < 2:
            return None
        cost, truth = g["madds"], g["truth"]
        return bool(cost.max() <= (1 + SAME_COST) * cost.min() and truth.max() - truth.min() <= SAME_TRUTH)

    groups = picks.groupby(["dataset", "arm"], sort=False)
    out = groups.agg(seeds=("seed", "count"), truth=("truth", "mean"), truth_min=("truth", "min"),
                     truth_max=("truth", "max"), regret=("regret", "mean"), beats=("beats", "mean"),
                     search_min=("search_min", "mean"))
    out["same_answer"] = [agree(g) for _, g in groups]
    return out.reset_index()


def quality_lines(picks: pd.DataFrame, summary: pd.DataFrame, notes: dict[str, str],
                  sizes: dict[str, int]) -> list[str]:
    lines = []
    for dataset, p in picks.groupby("dataset", sort=False):
        lines += [f"## {dataset}", "", notes.get(dataset, ""), ""]
        n = sizes.get(dataset, 0)
        lines += table(["arm", "seed", "pick MAdds", "fill", "chosen by top-1", "truth top-1", "regret",
                        f"beats (of {n})", "vs best MobileNetV3", "search CPU min"],
                       [[r.arm, str(r.seed), num(r.madds, ".1f"), num(r.fill, ".0%"), num(r.chosen_top1),
                         num(r.truth), num(r.regret), num(r.beats, ".0f"), num(r.vs_mnv3, "+.2f"),
                         num(r.search_min, ".1f")] for r in p.itertuples()])
        shared = [f"{r.arm} seed {r.seed} picked {r.truth_of}'s architecture" for r in p.itertuples()
                  if isinstance(r.truth_of, str)]   # pandas reads a missing one as NaN
        if shared:
            lines += ["", f"Same pick, one truth training: {'; '.join(shared)}."]
        s = summary[summary["dataset"] == dataset]
        lines += ["", "Per arm (mean over seeds; same answer: cost within 10% and truth within 1 point):", ""]
        lines += table(["arm", "seeds", "truth top-1", "range", "regret", f"beats (of {n})", "same answer",
                        "search CPU min"],
                       [[r.arm, str(r.seeds), num(r.truth), f"{num(r.truth_min)}-{num(r.truth_max)}",
                         num(r.regret), num(r.beats, ".1f"), {None: "n/a", True: "yes", False: "no"}[r.same_answer],
                         num(r.search_min, ".1f")] for r in s.itertuples()])
        lines.append("")
    return lines


def analyze_quality(path: Path, meta: dict, out: Path) -> tuple[Path, list[Path], str]:
    """report.md and picks.csv of a `search_quality` study folder."""
    rows = to_frame(read_rows(path / "rows.jsonl")) if (path / "rows.jsonl").is_file() else pd.DataFrame()
    rows = rows[rows["status"] == "complete"] if len(rows) else rows
    if rows.empty:
        raise AnalysisError(f"{path} has no pick trained under its truth protocol yet; run the study first")
    picks = pick_table(path, rows, meta)
    notes, sets, mnv3 = {}, {}, {}
    for dataset, g in rows.groupby("dataset", sort=False):
        truth, family, notes[dataset] = reference_truth((meta.get("reference") or {}).get(dataset), dataset,
                                                        g["protocol"].iloc[0], device_kinds(g))
        sets[dataset] = truth
        mnv3[dataset] = truth[family == "mobilenet_v3"].max() if (family == "mobilenet_v3").any() else None
    pairs = list(zip(picks["dataset"], picks["truth"]))
    picks["regret"] = [sets[d].max() - t if len(sets[d]) else None for d, t in pairs]
    picks["beats"] = [int((sets[d] < t).sum()) if len(sets[d]) else None for d, t in pairs]
    picks["vs_mnv3"] = [None if mnv3[d] is None else t - mnv3[d] for d, t in pairs]
    summary = arm_summary(picks)
    out.mkdir(parents=True, exist_ok=True)
    picks.to_csv(out / "picks.csv", index=False)
    lines = [f"# Study: {meta.get('study')} ({meta.get('size')})", "", str(meta.get("description", "")).strip(), "",
             "Regret: the reference set's best truth top-1 minus the pick's (below 0: the pick beats all of "
             "the set).", ""]
    sizes = {d: len(t) for d, t in sets.items()}
    (out / "report.md").write_text("\n".join(lines + quality_lines(picks, summary, notes, sizes)) + "\n")
    head = "; ".join(f"{r.dataset} {r.arm}: truth {r.truth:.2f}%" for r in summary.itertuples())
    return out, [out / "report.md", out / "picks.csv"], head
