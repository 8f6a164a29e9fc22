"""A search that answers at its budget: the band, the finalists' rung, the step floor and the
near-chance warning."""
from __future__ import annotations

import json
import math
import random
from dataclasses import replace

import pandas as pd
import pytest
from conftest import TINY_SPACE, banded_draws

import mfsearch
import mfsearch.search.baselines as baselines_mod
from mfsearch.cli.search import main
from mfsearch.common import UsageError
from mfsearch.search.baselines import baseline_configs
from mfsearch.search.confirm import candidates, resolution, summarize_seeds
from mfsearch.search.evaluate import into_band
from mfsearch.search.run import near_chance
from mfsearch.search.settings import DEFAULT_BAND, SearchSettings
from mfsearch.train import ProxyProtocol
from spaces import MobileFormerSpace, SpaceError

SPACE = TINY_SPACE
TINY = ["--epochs", "1", "--data-fraction", "0.02", "--test-fraction", "0.05", "--batch-size", "64",
        "--min-steps", "0", "--space", SPACE, "--threads", "2", "--confirm-top", "0", "--no-baselines"]


@pytest.fixture(autouse=True)
def isolated_baseline_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(baselines_mod, "CACHE_DIR", tmp_path / "baseline-cache")


def test_band_defaults_and_identity():
    acc = SearchSettings(budget=150e6, name="a")
    assert acc.band == DEFAULT_BAND and "band" in acc.identity()
    assert SearchSettings(budget=150e6, name="p", objective="pareto").band == 0
    # a run recorded before the band existed trained anything under its budget
    old = acc.to_dict()
    del old["band"]
    assert SearchSettings.from_dict(old).band == 0


def test_under_band_proposals_are_fitted_over_budget_ones_too_and_the_unfittable_rejected():
    space = MobileFormerSpace.from_file(SPACE)
    settings = SearchSettings(budget=15e6, name="b", band=0.9)
    fitted = rejected = 0
    for cfg, out, error, values in banded_draws(settings, 40):
        flops = space.flops(out)
        value = values["flops_over_budget"]
        if error is None:
            assert 13.5e6 <= flops <= 15e6 and value <= 0
            fitted += space.flops(cfg) < 13.5e6 or space.flops(cfg) > 15e6
        else:
            assert out == cfg and value > 0   # the sampler learns it is infeasible; nothing is trained
            rejected += 1
    assert fitted >= 10, "most proposals of this space lie outside the band and must have been width-fitted"
    off = SearchSettings(budget=15e6, name="c", band=0)
    small = space.decode({**space.sample_params(random.Random(1)), "width_mult": 0.5})
    assert into_band(off, space, small) == (small, None)   # band 0: today's behaviour


def test_banded_search_trains_only_in_band(tmp_path):
    assert main(["--out", str(tmp_path), *TINY, "--budget", "12M", "--trials", "3", "--name", "b"]) == 0
    df = pd.read_parquet(tmp_path / "b" / "trials.parquet")
    trained = df[df["status"] != "infeasible"]
    assert len(trained) >= 1 and (trained["status"] == "complete").all(), df.filter(["status", "error"])
    assert trained["flops"].between(0.9 * 12e6, 12e6).all(), list(trained["flops"])
    assert json.loads((tmp_path / "b" / "run.json").read_text())["settings"]["band"] == DEFAULT_BAND


def test_baselines_are_fitted_into_the_band():
    cfgs = baseline_configs(150e6, 0.9)
    assert {c.variant for c in cfgs} == {"large", "small"}
    from mfsearch.flops import estimate_flops
    assert all(135e6 <= estimate_flops(c) <= 150e6 for c in cfgs)
    assert all(c.width_mult not in (0.5, 0.75, 1.0, 1.25) for c in cfgs)   # not only the registered widths
    assert [c.width_mult for c in baseline_configs(150e6, 0)] == [0.5, 0.75, 1.0, 0.5]
    # --baseline-widths 3 (no band): Large and Small at any width, fitted at 50, 100 and 150M
    spread = baseline_configs(150e6, 0, 3)
    bands = [(0.9 * k * 50e6, k * 50e6) for k in (1, 2, 3)]
    for cfg in spread:
        assert any(lo <= mfsearch.estimate_flops(cfg) <= hi for lo, hi in bands)
    assert {c.variant for c in spread} == {"large", "small"} and len(spread) >= 5
    assert not {c.width_mult for c in spread} <= {0.35, 0.5, 0.75, 1.0, 1.25}


@pytest.mark.parametrize("args,text", [
    (["--band", "1.5"], "--band must be in [0, 1)"),
    (["--band", "-0.1"], "--band must be in [0, 1)"),
    (["--band", "x"], "--band"),
    (["--band", "0.5", "--objective", "pareto"], "a pareto search keeps the whole front"),
    (["--final-length", "0.5"], "--final-length must be in [1, 64]"),
    (["--min-steps", "-1"], "min steps must be >= 0"),
    (["--baseline-widths", "3"], "is for a search without a band"),
    (["--baseline-widths", "-1", "--band", "0"], "--baseline-widths must be >= 0"),
])
def test_bad_band_and_rung_values_exit_2_with_one_line(tmp_path, capsys, args, text):
    try:
        code = main(["--budget", "150M", "--out", str(tmp_path), *args])
    except SystemExit as exc:   # argparse's own refusals (a value that is not a number)
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert text in err and "\n" not in err and not any(tmp_path.iterdir())


def test_final_protocol_lengthens_data_first_then_epochs():
    s = SearchSettings(budget=150e6, name="f", final_length=4)
    p = s.final_protocol()
    assert (p.data_fraction, p.epochs, p.test_fraction) == (1.0, 4, 1.0)   # 2 x 0.5 x 4 = 4 passes
    assert SearchSettings(budget=150e6, name="g", final_length=1).final_protocol() == s.protocol
    assert SearchSettings(budget=150e6, name="d").final_protocol() == replace(s.protocol, data_fraction=1.0,
                                                                              test_fraction=1.0,
                                                                              min_steps=300)   # the default: 2x
    # on data so small that the step floor sets a trial's length, the rung's floor is 4x too
    assert p.min_steps == 4 * s.protocol.min_steps
    small = 1_600   # training images: 800 per trial epoch at batch 128 = 7 steps, so the floor decides
    trial_steps = s.protocol.epochs_for(math.ceil(small * s.protocol.data_fraction / 128)) * \
        math.ceil(small * s.protocol.data_fraction / 128)
    final_steps = p.epochs_for(math.ceil(small * p.data_fraction / 128)) * math.ceil(small * p.data_fraction / 128)
    assert final_steps >= 4 * s.protocol.min_steps and trial_steps < 2 * s.protocol.min_steps
    with pytest.raises(UsageError):
        SearchSettings(budget=150e6, name="h", final_length=0.5)


def _trial(tid, top1, flops, config):
    return {"trial_id": tid, "status": "complete", "final_top1": top1, "flops": flops, "config": config, "seed": 0}


def test_rung_picks_by_the_final_runs_only_and_tells_a_resolved_lead():
    df = pd.DataFrame([_trial(0, 60.0, 140e6, "a"), _trial(1, 58.0, 145e6, "b"), _trial(2, 40.0, 138e6, "c"),
                       _trial(3, 60.0, 140e6, "a"), {**_trial(4, 99.0, 141e6, "d"), "status": "pruned"}])
    top = candidates(df, 2)
    assert list(top["trial_id"]) == [0, 1]        # one per architecture, complete rows only
    rows = [{"confirms": "0", "seed": s, "status": "complete", "final_top1": v} for s, v in [(0, 70.0), (1, 71.0)]]
    rows += [{"confirms": "1", "seed": s, "status": "complete", "final_top1": v} for s, v in [(0, 80.0), (1, 81.0)]]
    table = summarize_seeds(top, rows, include_trial=False)
    assert list(table["trial_id"]) == ["1", "0"]   # the long rung overturns the trials' order
    assert table["top1"].iloc[0] == [80.0, 81.0]   # the short trial's 58% is not mixed in
    lead = resolution(table)
    assert lead["lead"] == pytest.approx(10.0) and lead["resolved"] and lead["low"] > 0
    close = summarize_seeds(top, [{**r, "final_top1": v} for r, v in zip(rows, [70, 74, 71, 73])],
                            include_trial=False)
    assert not resolution(close)["resolved"]
    single = summarize_seeds(top, rows[::2], include_trial=False)
    assert resolution(single)["low"] is None and not resolution(single)["resolved"]
    # with the trial protocol as the rung, the search's own run counts in the mean
    same = summarize_seeds(top, rows, include_trial=True)
    assert same.set_index("trial_id").loc["0", "top1"] == [60.0, 70.0, 71.0]


def test_near_chance_is_flagged_only_when_everything_sits_there():
    trials = pd.DataFrame([_trial(0, 12.0, 1, "a"), _trial(1, 14.0, 1, "b")])
    assert near_chance(trials, pd.DataFrame(), chance=10.0) == 14.0
    base = pd.DataFrame([{**_trial("m", 30.0, 1, "m")}])
    assert near_chance(trials, base, chance=10.0) is None


def test_step_floor_on_a_small_image_tree_and_the_chance_warning(tmp_path, capsys):
    """~2,000 noise images in 10 folders, no split: every trial trains for at least the step
    floor (not 2 epochs of ~6 steps), and trials at chance make the summary say so."""
    from PIL import Image
    gen = random.Random(0)
    for c in range(10):
        (tmp_path / "tree" / f"c{c}").mkdir(parents=True)
        for i in range(200):
            pixels = bytes(gen.getrandbits(8) for _ in range(12 * 12 * 3))
            Image.frombytes("RGB", (12, 12), pixels).save(tmp_path / "tree" / f"c{c}" / f"{i:03d}.png")
    args = ["--out", str(tmp_path / "runs"), "--epochs", "2", "--data-fraction", "0.5", "--batch-size", "64",
            "--space", SPACE, "--threads", "2", "--confirm-top", "0", "--no-baselines", "--band", "0",
            "--budget", "10M", "--trials", "1", "--dataset", "imagefolder", "--data-root", str(tmp_path / "tree"),
            "--name", "small", "--min-steps", "60", "--base-resolution", "16"]
    assert main(args) == 0
    out = capsys.readouterr().out
    df = pd.read_parquet(tmp_path / "runs" / "small" / "trials.parquet")
    row = df.iloc[0]
    assert row["status"] == "complete", row["error"]
    steps_per_epoch = 800 // 64          # 80% of 2,000 kept for training, half of it per trial
    assert row["epochs_done"] * steps_per_epoch >= 60 and row["epochs_done"] > 2
    assert json.loads(row["protocol"])["min_steps"] == 60
    assert "WARNING: every trial and baseline ended within" in out


def test_in_band_sampling_rejects_rather_than_widens():
    space = MobileFormerSpace()
    rng = random.Random(0)
    draws = [space.sample_in_band(rng, 150e6, 0.9) for _ in range(5)]
    assert all(135e6 <= space.flops(c) <= 150e6 for c in draws)
    assert all(0.5 <= c.width_mult <= 1.5 for c in draws)    # the space's own widths
    with pytest.raises(SpaceError, match="lower the band"):
        MobileFormerSpace.from_file(SPACE).sample_in_band(rng, 300e6, 0.9, max_tries=50)


def test_min_steps_raises_epochs_only_when_needed():
    p = ProxyProtocol(epochs=2, min_steps=100)
    assert p.epochs_for(10) == 10 and p.epochs_for(100) == 2 and ProxyProtocol(epochs=2).epochs_for(1) == 2
