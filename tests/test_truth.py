"""The search-truth statistics on hand-built tables: rank agreement with the truth, regret
of each protocol's pick, the truth's seed spread and each family's best."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mfsearch.analysis.load import AnalysisError
from mfsearch.analysis.truth import (
    family_best,
    protocol_fidelity,
    regret,
    score_table,
    truth_column,
    truth_cost,
    truth_lines,
    truth_spread,
)

TRAINED = json.dumps({"score": None, "epochs": 2})
SCORED = json.dumps({"score": "madds", "epochs": 0})


def _rows(protocol, values, seed=0, kind=TRAINED, minutes=1.0):
    return [{"variant": v, "protocol_name": protocol, "seed": seed, "score": s, "status": "complete",
             "protocol": kind, "wall_time": minutes * 60, "family": "mobilenet_v3" if v == "m" else "mobile_former",
             "flops": 140e6} for v, s in values.items()]


TRUTH = {"a": 90.0, "b": 85.0, "c": 80.0, "d": 75.0, "m": 70.0}


def test_regret_is_the_best_truth_minus_the_truth_of_the_pick():
    truth = pd.Series(TRUTH)
    assert regret(pd.Series({"a": 1, "b": 2, "c": 0}), truth) == ("b", 5.0)
    assert regret(pd.Series(TRUTH), truth) == ("a", 0.0)
    # only architectures both sides know count, for the pick and for the best
    assert regret(pd.Series({"z": 99, "c": 0, "d": 1}), truth) == ("d", 5.0)


def test_protocol_fidelity_on_a_hand_built_table():
    rows = _rows("truth", TRUTH, minutes=10)
    rows += _rows("perfect", {k: v - 50 for k, v in TRUTH.items()}, seed=0)
    rows += _rows("perfect", {k: v - 40 for k, v in TRUTH.items()}, seed=1)
    reverse = {k: -v for k, v in TRUTH.items()}
    rows += _rows("reverse", reverse, seed=0) + _rows("reverse", reverse, seed=1)
    # seed 0 picks d (regret 15), seed 1 picks a (regret 0); their mean ranks a first
    rows += _rows("noisy", {"a": 5, "b": 4, "c": 3, "d": 6, "m": 1}, seed=0)
    rows += _rows("noisy", {"a": 9, "b": 4, "c": 3, "d": 2, "m": 1}, seed=1)
    rows += _rows("madds", {"a": 1, "b": 2, "c": 3, "d": 4, "m": 5}, kind=SCORED, minutes=0)
    for r in rows:   # recorded threads: one count for `perfect`, two for `reverse`, none for the rest
        if r["protocol_name"] in ("perfect", "reverse"):
            r["threads"] = 2 if r["protocol_name"] == "reverse" and r["variant"] == "a" else 1
    df = pd.DataFrame(rows)
    table = {f.protocol: f for f in protocol_fidelity(df, n_boot=200)}
    assert (table["perfect"].threads, table["reverse"].threads, table["noisy"].threads) == ("1", "1/2", "")
    assert np.isnan(table["perfect"].images)   # rows without a throughput give no image count
    counted = df.assign(images_per_s=200.0, train_time=30.0)
    assert protocol_fidelity(counted, n_boot=0)[0].images == 6000.0
    # a run slowed by other work moves the median minutes no more than its rank
    slowed = df.assign(wall_time=df["wall_time"].where((df["protocol_name"] != "perfect") | (df["variant"] != "a"),
                                                       6000.0))
    assert next(f for f in protocol_fidelity(slowed, n_boot=0) if f.protocol == "perfect").cpu_min == 1.0
    assert set(table) == {"perfect", "reverse", "noisy", "madds"}   # truth is the reference, not a row
    assert table["perfect"].kendall == pytest.approx(1.0) and table["perfect"].regret == 0
    assert table["perfect"].seed_kendall == pytest.approx(1.0) and table["perfect"].cpu_min == pytest.approx(1.0)
    assert table["reverse"].kendall == pytest.approx(-1.0) and table["reverse"].regret == 20.0
    assert table["reverse"].pick == "m"
    assert table["noisy"].pick == "a" and table["noisy"].regret == 0.0
    assert table["noisy"].seed_regret == pytest.approx(7.5)
    assert table["madds"].kind == "zero-cost" and table["madds"].kendall == pytest.approx(-1.0)
    assert table["perfect"].kind == "trained" and table["perfect"].seeds == 2 and table["perfect"].n == 5


def test_truth_seed_spread_and_family_best():
    rows = _rows("truth", TRUTH) + _rows("truth", {"a": 88.0, "m": 71.0}, seed=1)
    df = pd.DataFrame(rows)
    scores = score_table(df)
    assert truth_column(scores)["a"] == pytest.approx(89.0)
    spread = truth_spread(scores)
    assert spread["architectures_with_two_seeds"] == 2
    assert spread["seed_gap_mean"] == pytest.approx(1.5)   # |90-88| and |70-71|
    best = family_best(df, truth_column(scores))
    assert best.loc["a", "family"] == "mobile_former" and best.loc["m", "truth"] == pytest.approx(70.5)
    assert len(best) == 2
    # its cost: 7 runs of a minute at 6,000 images, one slowed to 50 (the median holds, the sum counts it)
    counted = df.assign(images_per_s=200.0, train_time=30.0, threads=1,
                        wall_time=df["wall_time"].where(df.index != 0, 3000.0))
    assert truth_cost(counted) == ("The truth's cost: 7 runs of 6k training images, 1.00 wall minutes each (median) "
                                   "at 1 thread(s), 0.9 hours in all.")


def test_no_truth_row_is_a_clear_error():
    with pytest.raises(AnalysisError, match="truth"):
        truth_column(score_table(pd.DataFrame(_rows("default", TRUTH))))


def test_a_study_in_progress_says_why_its_table_is_empty():
    rows = _rows("truth", {"a": 90.0, "m": 70.0}) + _rows("default", TRUTH)   # two truths: no ranking yet
    df = pd.DataFrame(rows)
    fidelity = protocol_fidelity(df, n_boot=0)
    assert fidelity == []
    lines, _ = truth_lines(df, fidelity)
    assert any("No protocol shares 3 architectures with the truth yet (2 trained under it so far)" in ln
               for ln in lines)
