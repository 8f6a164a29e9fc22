"""Statistics shared by the study and calibration analyses: percentile bootstrap over
models, rank correlations, power-law fits and cost-matched family pairs."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats


def bootstrap_interval(stat: Callable[[np.ndarray], float], n: int, n_boot: int = 2000,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile 95% interval of stat(idx) over resampled indices (resamples with fewer than
    three distinct items, or a non-finite statistic, are left out)."""
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        if len(set(idx)) >= 3:
            vals.append(stat(idx))
    vals = np.asarray(vals, float)
    vals = vals[np.isfinite(vals)]
    if len(vals) == 0:
        return float("nan"), float("nan")
    return tuple(float(q) for q in np.percentile(vals, [2.5, 97.5]))


def kendall(a: np.ndarray, b: np.ndarray) -> float:
    return float(stats.kendalltau(a, b).statistic)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    return float(stats.spearmanr(a, b).statistic)


def power_fit(flops: np.ndarray, top1: np.ndarray) -> tuple[float, float, tuple[float, float]]:
    """error(%) = a * MAdds^b fitted in log-log space: (a, b, 95% interval of b)."""
    if len(flops) < 3:
        return float("nan"), float("nan"), (float("nan"), float("nan"))
    fit = stats.linregress(np.log(np.asarray(flops, float)), np.log(100.0 - np.asarray(top1, float)))
    half = stats.t.ppf(0.975, len(flops) - 2) * fit.stderr
    return float(np.exp(fit.intercept)), float(fit.slope), (float(fit.slope - half), float(fit.slope + half))


def nearest_pairs(mobile_former: pd.Series, mobilenet_v3: pd.Series, max_ratio: float = 1.25) -> list[tuple]:
    """(Mobile-Former, MobileNetV3) name pairs: each MobileNetV3 (index: name, value: MAdds)
    beside the Mobile-Former nearest in MAdds, when within `max_ratio`."""
    out = []
    if mobile_former.empty:
        return out
    mf = mobile_former.astype(float)
    for name, flops in mobilenet_v3.astype(float).items():
        gap = np.abs(np.log(mf.to_numpy() / flops))
        if np.exp(gap.min()) <= max_ratio:
            out.append((mf.index[int(np.argmin(gap))], name))
    return out


@dataclass
class RankAgreement:
    kendall: float
    kendall_ci: tuple[float, float]
    spearman: float
    spearman_ci: tuple[float, float]
    n: int


def rank_correlations(x: np.ndarray, y: np.ndarray, n_boot: int = 2000, seed: int = 0) -> RankAgreement:
    """Kendall tau and Spearman rho of paired scores, with percentile bootstrap intervals."""
    return RankAgreement(kendall(x, y), bootstrap_interval(lambda i: kendall(x[i], y[i]), len(x), n_boot, seed),
                         spearman(x, y), bootstrap_interval(lambda i: spearman(x[i], y[i]), len(x), n_boot, seed),
                         len(x))
