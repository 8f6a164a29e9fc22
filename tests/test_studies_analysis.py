"""Study analysis on hand-built tables: means over seeds, power-law exponents, rank agreement."""
import json

import numpy as np
import pandas as pd
import pytest

from mfsearch.analysis.load import AnalysisError
from mfsearch.analysis.studies import (
    differences,
    matched_pairs,
    power_law,
    published_top1,
    rank_agreement,
    variant_table,
)
from mfsearch.models import get_config


def _rows(variants, protocol="default"):
    rows = []
    for name, family, flops, tops in variants:
        for seed, top in enumerate(tops):
            rows.append(dict(variant=name, family=family, flops=flops, params=1e6, final_top1=top, seed=seed,
                             protocol_name=protocol))
    return rows


def test_variant_table_means_and_std_in_file_order():
    df = pd.DataFrame(_rows([("b", "mobile_former", 2e6, [50, 52, 54]), ("a", "mobile_former", 1e6, [40, 40])]))
    t = variant_table(df)
    assert list(t["variant"]) == ["b", "a"]
    assert t.loc[0, "top1_mean"] == 52 and t.loc[0, "top1_std"] == pytest.approx(2.0) and t.loc[1, "seeds"] == 2


def test_power_law_recovers_a_known_exponent():
    flops = np.array([25e6, 50e6, 100e6, 200e6, 400e6])
    error = 300 * flops ** -0.1   # error (%) = 300 * MAdds^-0.1
    df = pd.DataFrame(_rows([(f"v{i}", "mobile_former", f, [100 - e]) for i, (f, e) in enumerate(zip(flops, error))]))
    fit = power_law(variant_table(df), "mobile_former")
    assert fit.b == pytest.approx(-0.1, abs=1e-9) and fit.a == pytest.approx(300, rel=1e-6)
    assert fit.b_low == pytest.approx(fit.b_high, abs=1e-6) and fit.points == 5
    assert power_law(variant_table(df.iloc[:2]), "mobile_former") is None
    same_size = df.assign(flops=100e6)
    assert power_law(variant_table(same_size), "mobile_former") is None  # no spread of sizes


def test_rank_agreement_identical_and_reversed():
    short = [(f"v{i}", "mobile_former", 1e6, [float(i)]) for i in range(6)]
    same = [(f"v{i}", "mobile_former", 1e6, [float(10 * i)]) for i in range(6)]
    rev = [(f"v{i}", "mobile_former", 1e6, [float(-i)]) for i in range(6)]
    t = variant_table(pd.DataFrame(_rows(short, "default") + _rows(same, "long")))
    ra = rank_agreement(t, "default", "long")
    assert ra.kendall == pytest.approx(1.0) and ra.spearman == pytest.approx(1.0) and ra.n == 6
    t = variant_table(pd.DataFrame(_rows(short, "default") + _rows(rev, "long")))
    assert rank_agreement(t, "default", "long").kendall == pytest.approx(-1.0)


def test_differences_welch_interval_and_verdicts():
    df = pd.DataFrame(_rows([("ref", "mobile_former", 1e6, [50, 52, 54]), ("up", "mobile_former", 1e6, [60, 62, 64]),
                             ("same", "mobile_former", 1e6, [49, 53, 57]), ("one", "mobile_former", 1e6, [40])]))
    d = {x.variant: x for x in differences(df, "ref", {"up": 0.5, "same": -1.0})}
    # equal std 2, n 3 each: standard error sqrt(8/3), Welch df 4, t(0.975, 4) = 2.7764
    half = 2.7764451 * np.sqrt(8 / 3)
    assert d["up"].delta == pytest.approx(10) and d["up"].low == pytest.approx(10 - half, abs=1e-5)
    assert d["up"].verdict == "resolved gain, same sign"
    assert d["same"].delta == pytest.approx(1) and d["same"].verdict == "within seed noise"
    assert np.isnan(d["one"].low) and d["one"].verdict == "n/a (one seed)"   # nothing to test
    with pytest.raises(AnalysisError, match="reference"):
        differences(df, "missing")


def test_matched_pairs_pair_each_published_mobilenet_with_the_nearest_preset():
    df = pd.DataFrame(_rows([("mobile_former_151m", "mobile_former", 152e6, [40, 42, 44]),
                             ("mobile_former_508m", "mobile_former", 510e6, [50, 50, 50]),
                             ("mobilenet_v3_large_075", "mobilenet_v3", 153e6, [30, 32, 34]),
                             ("mobilenet_v3_small_100", "mobilenet_v3", 57e6, [25, 25, 25]),    # no preset near
                             ("mobilenet_v3_small_050", "mobilenet_v3", 20e6, [20, 20, 20])]))  # no paper number
    pairs = matched_pairs(df)
    assert len(pairs) == 1
    p = pairs.iloc[0]
    assert (p["mobile_former"], p["mobilenet_v3"]) == ("mobile_former_151m", "mobilenet_v3_large_075")
    assert p["proxy_delta"] == pytest.approx(10) and p["published_delta"] == pytest.approx(75.2 - 73.3)
    assert p["verdict"] == "resolved gain, same sign"
    assert published_top1("mobile_former_294m") == 77.9 and published_top1("dim64") is None
    same = json.dumps(get_config("mobile_former_294m").to_dict())
    changed = json.dumps(get_config("mobile_former_294m", tokens=3).to_dict())
    assert published_top1("mobile_former_294m", same) == 77.9
    assert published_top1("mobile_former_294m", changed) is None   # a modified preset is not the published model


def test_dataset_checks_count_near_chance_and_rank_agreement_on_a_hand_built_table():
    from mfsearch.analysis.datasets import agreement, check, dataset_lines

    def rows(dataset, tops):  # tops: variant -> per-seed top-1
        return [dict(variant=v, seed=s, final_top1=t, dataset=dataset, num_classes=10, protocol_name="default")
                for v, ts in tops.items() for s, t in enumerate(ts)]

    cheap = {"a": [12.0, 14.0], "b": [30.0, 33.0], "c": [40.0, 38.0], "d": [50.0, 52.0], "e": [11.0, 20.0]}
    real = {"a": [20.0], "b": [30.0], "c": [40.0], "d": [50.0], "e": [25.0]}
    df = pd.DataFrame(rows("shapes", cheap) + rows("cifar10", real))
    c = check(df[df["dataset"] == "shapes"], "shapes")
    # means a 13.0 and e 15.5: only a is within 3 points of 10% chance; runs 12, 11 (and 14 is not 13.0+)
    assert (c.near_chance, c.near_chance_runs, c.runs, c.chance) == (1, 2, 10, 10.0)
    # seed 0 order a<b<c<d with e lowest; seed 1 puts e between a and b: Spearman 1 - 6*sum(d^2)/(n(n^2-1))
    assert c.seeds.spearman == pytest.approx(1 - 6 * (1 + 1) / (5 * 24))
    ra = agreement(df, "shapes", "cifar10")
    # seed means a 13, e 15.5 < b < c < d on shapes; cifar: a 20 < e 25 < b < c < d: same order
    assert ra.spearman == pytest.approx(1.0) and ra.n == 5
    lines, summary = dataset_lines(df)
    assert "| shapes | 5 | 10.0 | 1 (2 of 10 runs) |" in "\n".join(lines)
    assert summary["agreement"][0][:2] == ("shapes", "cifar10")
