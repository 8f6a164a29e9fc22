"""Fronts and the numbers that compare them: Pareto sets, hypervolume, front-vs-front
gains per FLOP bucket, and FLOP-matched error EDFs.

Convention throughout: x (MAdds) is minimised, y (proxy top-1, %) is maximised, and
only complete trials count: a pruned trial's accuracy is that of a shorter training.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..models import FAMILIES

Points = pd.DataFrame | Sequence[tuple[float, float]] | np.ndarray


def pareto_front(df: pd.DataFrame, x: str = "flops", y: str = "final_top1") -> pd.DataFrame:
    """The non-dominated complete rows, sorted by x. Identical points are kept once and
    of several rows at equal x only the best y stays, so the front is strictly
    increasing in both x and y (what step curves and hypervolume need)."""
    rows = df[df["status"] == "complete"] if "status" in df.columns else df
    rows = rows.dropna(subset=[x, y]).sort_values([x, y], ascending=[True, False], kind="stable")
    ys = rows[y].to_numpy(dtype=float)
    best_before = np.maximum.accumulate(np.concatenate([[-np.inf], ys[:-1]]))
    return rows[ys > best_before]


def _xy(points: Points, x: str, y: str) -> tuple[np.ndarray, np.ndarray]:
    """A front's coordinates, sorted by x and reduced to non-dominated points."""
    if isinstance(points, pd.DataFrame):
        front = pareto_front(points, x, y)
        return front[x].to_numpy(dtype=float), front[y].to_numpy(dtype=float)
    arr = np.asarray(points, dtype=float).reshape(-1, 2)
    front = pareto_front(pd.DataFrame({"x": arr[:, 0], "y": arr[:, 1]}), "x", "y")
    return front["x"].to_numpy(), front["y"].to_numpy()


def hypervolume(front: Points, reference: tuple[float, float], x: str = "flops", y: str = "final_top1") -> float:
    """Area dominated by the front inside the box bounded by the reference point
    (x_ref, y_ref): the union of [x_i, x_ref] x [y_ref, y_i]. Points beyond the
    reference contribute nothing. The analysis fixes x_ref = budget, y_ref = 0 %, so
    hypervolumes of different runs and families are comparable."""
    x_ref, y_ref = reference
    xs, ys = _xy(front, x, y)
    keep = (xs <= x_ref) & (ys > y_ref)
    xs, ys = xs[keep], ys[keep]
    if xs.size == 0:
        return 0.0
    widths = np.diff(np.append(xs, x_ref))
    return float(np.sum(widths * (ys - y_ref)))


def step_value(front: Points, at: float | np.ndarray, x: str = "flops", y: str = "final_top1") -> np.ndarray:
    """The front's step curve: the best y among its points with x <= at (NaN below its first point)."""
    xs, ys = _xy(front, x, y)
    idx = np.searchsorted(xs, np.atleast_1d(np.asarray(at, dtype=float)), side="right") - 1
    return np.where(idx >= 0, ys[np.clip(idx, 0, None)] if ys.size else np.nan, np.nan)


def reach_x(front: Points, target: float | np.ndarray, x: str = "flops", y: str = "final_top1") -> np.ndarray:
    """The smallest x at which the front reaches y >= target (NaN if it never does)."""
    xs, ys = _xy(front, x, y)
    idx = np.searchsorted(ys, np.atleast_1d(np.asarray(target, dtype=float)), side="left")
    return np.where(idx < ys.size, xs[np.clip(idx, 0, max(ys.size - 1, 0))] if xs.size else np.nan, np.nan)


def bucket_edges(values: Sequence[float] | np.ndarray, upper: float, n: int = 3) -> list[float]:
    """FLOP bucket edges from 0 to `upper` (the budget) with the inner edges at the
    quantiles of `values`, rounded to two significant digits so tables read easily."""
    vals = np.asarray([v for v in values if np.isfinite(v)], dtype=float)
    upper = float(max(upper, vals.max())) if vals.size else float(upper)
    inner = []
    if vals.size:
        for q in np.quantile(vals, np.arange(1, n) / n):
            r = float(f"{q:.2g}")
            if 0 < r < upper and r not in inner:
                inner.append(r)
    return [0.0, *sorted(inner), upper]


def compare_fronts(a: Points, b: Points, edges: Sequence[float], x: str = "flops",
                   y: str = "final_top1") -> pd.DataFrame:
    """Front A against front B per bucket (lo, hi].

    top1_gain: A's best point in the bucket against B's step curve at that point's x
    (B may use any of its models with no more FLOPs). flops_saving: B's best point in
    the bucket against the fewest FLOPs at which A reaches its top-1 (negative: A needs
    more; NaN: A never reaches it)."""
    ax, ay = _xy(a, x, y)
    bx, by = _xy(b, x, y)
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        row = {"lo": lo, "hi": hi, "a_x": np.nan, "a_y": np.nan, "b_y_at_a": np.nan, "top1_gain": np.nan,
               "b_x": np.nan, "b_y": np.nan, "a_x_at_b": np.nan, "flops_saving": np.nan,
               "flops_saving_pct": np.nan}
        in_a = np.flatnonzero((ax > lo) & (ax <= hi))
        if in_a.size:
            i = in_a[-1]
            row.update(a_x=ax[i], a_y=ay[i], b_y_at_a=float(step_value(np.c_[bx, by], ax[i])[0]))
            row["top1_gain"] = row["a_y"] - row["b_y_at_a"]
        in_b = np.flatnonzero((bx > lo) & (bx <= hi))
        if in_b.size:
            j = in_b[-1]
            reach = float(reach_x(np.c_[ax, ay], by[j])[0])
            row.update(b_x=bx[j], b_y=by[j], a_x_at_b=reach, flops_saving=bx[j] - reach,
                       flops_saving_pct=100.0 * (1.0 - reach / bx[j]))
        rows.append(row)
    return pd.DataFrame(rows)


def progress(trials: pd.DataFrame, reference: tuple[float, float], x: str = "flops",
             y: str = "final_top1") -> pd.DataFrame:
    """Best complete top-1 so far and the hypervolume of the front so far, after each
    trial in the order the search ran them (infeasible and pruned trials count as trials)."""
    rows = trials.sort_values("order", kind="stable")
    done = (rows["status"] == "complete").to_numpy() & rows[y].notna().to_numpy()
    best = pd.Series(np.where(done, rows[y].to_numpy(dtype=float), np.nan)).cummax().ffill()
    hv = [hypervolume(rows.iloc[:k], reference, x, y) for k in range(1, len(rows) + 1)]
    return pd.DataFrame({"trial": np.arange(1, len(rows) + 1), "best_top1": best.to_numpy(), "hypervolume": hv})


@dataclass
class EDF:
    """One family's error EDF: sorted errors (100 - top-1) and the weighted fraction
    of models with error <= each of them."""

    family: str
    errors: np.ndarray
    cdf: np.ndarray
    n: int


@dataclass
class EDFComparison:
    edfs: list[EDF]
    flop_range: tuple[float, float] | None   # the common range the EDFs were matched over
    bins: int


def design_space_edfs(df: pd.DataFrame, families: Sequence[str] | None = None,
                      n_bins: int | None = None) -> EDFComparison:
    """Complexity-normalised error EDFs (Radosavovic et al. 2019/2020): models outside the
    families' common FLOP range are dropped, the range is split into log-spaced bins,
    only bins every family populates are kept, and each model is weighted by
    1 / (its family's models in its bin), so every family has the same FLOP
    distribution. Without a common range, the EDFs are plain and unmatched. `families`:
    every registered family by default."""
    families = list(FAMILIES) if families is None else families
    done = df[(df["status"] == "complete") & df["final_top1"].notna() & df["flops"].notna()]
    groups = {f: done[done["family"] == f] for f in families}
    groups = {f: g for f, g in groups.items() if not g.empty}
    if len(groups) < 2:
        return EDFComparison([_edf(f, g, np.ones(len(g))) for f, g in groups.items()], None, 0)
    lo = max(g["flops"].min() for g in groups.values())
    hi = min(g["flops"].max() for g in groups.values())
    inside = {f: g[(g["flops"] >= lo) & (g["flops"] <= hi)] for f, g in groups.items()}
    if not lo < hi or any(g.empty for g in inside.values()):
        return EDFComparison([_edf(f, g, np.ones(len(g))) for f, g in groups.items()], None, 0)
    bins = n_bins or int(np.clip(min(len(g) for g in inside.values()) // 2, 1, 5))
    while True:  # with one bin every family populates it, so this ends
        edges = np.geomspace(lo, hi, bins + 1)
        which = {f: np.clip(np.searchsorted(edges, g["flops"], side="right") - 1, 0, bins - 1)
                 for f, g in inside.items()}
        shared = set.intersection(*(set(w.tolist()) for w in which.values()))
        if shared:
            break
        bins -= 1
    edfs = []
    for f, g in inside.items():
        counts = pd.Series(which[f]).value_counts()
        weights = np.array([1.0 / counts[b] if b in shared else 0.0 for b in which[f]])
        edfs.append(_edf(f, g[weights > 0], weights[weights > 0]))
    return EDFComparison(edfs, (float(lo), float(hi)), bins)


def _edf(family: str, rows: pd.DataFrame, weights: np.ndarray) -> EDF:
    errors = 100.0 - rows["final_top1"].to_numpy(dtype=float)
    order = np.argsort(errors, kind="stable")
    w = np.asarray(weights, dtype=float)[order]
    cdf = np.cumsum(w) / w.sum() if w.size else w
    return EDF(family, errors[order], cdf, int(rows.shape[0]))
