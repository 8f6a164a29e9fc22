"""Study analysis on hand-built tables: means over seeds, power-law exponents, rank agreement."""
import numpy as np
import pandas as pd
import pytest

from mfsearch.analysis.studies import power_law, rank_agreement, variant_table


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
    short = [("v%d" % i, "mobile_former", 1e6, [float(i)]) for i in range(6)]
    same = [("v%d" % i, "mobile_former", 1e6, [float(10 * i)]) for i in range(6)]
    rev = [("v%d" % i, "mobile_former", 1e6, [float(-i)]) for i in range(6)]
    t = variant_table(pd.DataFrame(_rows(short, "default") + _rows(same, "long")))
    ra = rank_agreement(t, "default", "long")
    assert ra.kendall == pytest.approx(1.0) and ra.spearman == pytest.approx(1.0) and ra.n == 6
    t = variant_table(pd.DataFrame(_rows(short, "default") + _rows(rev, "long")))
    assert rank_agreement(t, "default", "long").kendall == pytest.approx(-1.0)
