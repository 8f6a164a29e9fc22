"""The parameter budget: a hard cap checked before training, a sampler constraint, held
within the band, recorded without changing the identity of runs that do not use it; and
params as the cost axis of a pareto search."""
from __future__ import annotations

import hashlib
import json
import random

import optuna
import pandas as pd
import pytest
from conftest import TINY_SPACE, banded_draws

import mfsearch.search.baselines as baselines_mod
from mfsearch.analysis.load import load_runs
from mfsearch.analysis.params import has_params_axis, params_lines, plot_params
from mfsearch.cli.search import add_arguments, main, settings_from_args
from mfsearch.common import OneLineParser, parse_params
from mfsearch.flops import estimate_flops, estimate_params
from mfsearch.search import evaluate as evaluate_mod
from mfsearch.search.evaluate import into_band
from mfsearch.search.run import check_output
from mfsearch.search.settings import SearchSettings
from mfsearch.train import ProxyResult
from spaces import MobileFormerSpace, SpaceError

SPACE = TINY_SPACE
TINY = ["--epochs", "1", "--data-fraction", "0.02", "--test-fraction", "0.05", "--batch-size", "64",
        "--min-steps", "0", "--band", "0", "--space", SPACE, "--threads", "2", "--confirm-top", "0",
        "--no-baselines"]
# the tiny space holds 0.56-1.4M parameters: about half its proposals lie over 1M
PARAM_BUDGET = 1e6
# sha256 of a default run's identity, computed before --param-budget existed
DEFAULT_IDENTITY = "51c5c99de9d79d08e6a3b8956f93455f562b203a5287c1400932c938c45b846f"


@pytest.fixture(autouse=True)
def isolated_baseline_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(baselines_mod, "CACHE_DIR", tmp_path / "baseline-cache")


def identity_hash(settings: SearchSettings) -> str:
    return hashlib.sha256(json.dumps(settings.identity(), sort_keys=True).encode()).hexdigest()


@pytest.mark.parametrize("text,value", [("5M", 5e6), ("5e6", 5e6), ("5000000", 5e6), ("2.5M", 2.5e6),
                                        ("800k", 8e5)])
def test_param_budget_formats(text, value):
    assert parse_params(text) == pytest.approx(value)


@pytest.mark.parametrize("value", ["abc", "-1", "0", "5"])
def test_bad_param_budgets_give_one_line_and_exit_2(tmp_path, capsys, value):
    assert main(["--budget", "150M", "--out", str(tmp_path), f"--param-budget={value}"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--param-budget" in err, err
    assert not any(tmp_path.iterdir())


def test_identity_without_the_flag_is_unchanged_and_with_it_differs():
    plain = SearchSettings(budget=150e6, name="x")
    assert identity_hash(plain) == DEFAULT_IDENTITY and "param_budget" not in plain.identity()
    old = plain.to_dict()
    del old["param_budget"]   # a run.json from before the flag
    assert SearchSettings.from_dict(old).param_budget is None
    assert identity_hash(SearchSettings.from_dict(old)) == DEFAULT_IDENTITY
    capped = SearchSettings(budget=150e6, name="x", param_budget=5e6)
    assert capped.identity()["param_budget"] == 5e6 and identity_hash(capped) != DEFAULT_IDENTITY


def test_resuming_an_earlier_run_with_a_param_budget_is_refused(tmp_path, capsys):
    args = ["--out", str(tmp_path), *TINY, "--budget", "20M", "--trials", "1", "--name", "r"]
    p = OneLineParser(prog="search.py")
    add_arguments(p)
    recorded = settings_from_args(p.parse_args(args)).to_dict()
    del recorded["param_budget"]   # written before the flag existed
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "run.json").write_text(json.dumps({"settings": recorded}))
    assert check_output(settings_from_args(p.parse_args(args))) is True   # without it: the same run
    assert main([*args, "--param-budget", "1M"]) == 2
    err = capsys.readouterr().err
    assert "different param_budget" in err and len(err.strip().splitlines()) == 1, err


def test_a_search_trains_nothing_over_the_param_budget(tmp_path, monkeypatch):
    trained = []
    real = evaluate_mod.train_proxy
    monkeypatch.setattr(evaluate_mod, "train_proxy",
                        lambda cfg, *a, **k: trained.append(estimate_params(cfg)) or real(cfg, *a, **k))
    assert main(["--out", str(tmp_path), *TINY, "--budget", "20M", "--trials", "4", "--name", "p",
                 "--param-budget", "1M"]) == 0
    df = pd.read_parquet(tmp_path / "p" / "trials.parquet")
    over = df[df["status"] == "infeasible"]
    done = df[df["status"] != "infeasible"]
    assert len(over) >= 1 and len(done) >= 1, df.filter(["status", "params", "error"])
    assert (done["params"] <= PARAM_BUDGET).all() and (over["params"] > PARAM_BUDGET).all()
    assert over["error"].str.contains("parameter budget").all() and (over["epochs_done"] == 0).all()
    assert len(trained) == len(done) and max(trained) <= PARAM_BUDGET
    study = optuna.load_study(study_name="p", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "p" / "study.journal"))))
    for t in study.trials:
        infeasible = t.user_attrs["row"]["status"] == "infeasible"
        assert (t.constraints["params_over_budget"] > 0) == infeasible, (t.number, t.constraints)
    assert json.loads((tmp_path / "p" / "run.json").read_text())["settings"]["param_budget"] == PARAM_BUDGET


def test_within_the_band_a_candidate_over_the_param_budget_is_narrowed_or_refused():
    space = MobileFormerSpace.from_file(SPACE)
    cap = 1.2e6   # at 12M MAdds the tiny space's fitted candidates hold 0.74-1.68M parameters
    settings = SearchSettings(budget=12e6, name="b", band=0.9, param_budget=cap)
    unbudgeted = SearchSettings(budget=12e6, name="u", band=0.9)
    narrowed = refused = 0
    for cfg, out, error, values in banded_draws(settings, 12):
        fitted, _ = into_band(unbudgeted, space, cfg)
        if error is None:
            assert estimate_params(out) <= cap and 0.9 * 12e6 <= estimate_flops(out) <= 12e6
            assert values["params_over_budget"] <= 0 and values["flops_over_budget"] <= 0
            narrowed += out.width_mult < fitted.width_mult
        elif "parameter budget" in error:
            assert values["params_over_budget"] > 0   # the sampler learns it; nothing is trained
            refused += 1
    assert narrowed >= 1, "some fitted candidates over the budget must fit a little narrower"
    assert refused >= 1, "some must fit at no width in the band"


def test_sampling_under_a_param_cap():
    space = MobileFormerSpace.from_file(SPACE)
    rng = random.Random(0)
    assert all(estimate_params(space.sample(rng, max_params=0.7e6)) <= 0.7e6 for _ in range(3))
    with pytest.raises(SpaceError, match="raise the parameter cap") as err:   # no MAdds were asked for
        space.sample(rng, max_params=1e3, max_tries=5)
    assert "MAdds" not in str(err.value)


def test_baselines_over_the_param_budget_are_left_out(tmp_path, monkeypatch):
    trained, logged = [], []
    monkeypatch.setattr(baselines_mod, "load_data", lambda settings: None)
    monkeypatch.setattr(baselines_mod, "train_proxy", lambda cfg, *a, **k: trained.append(cfg) or ProxyResult(
        status="complete", final_top1=50.0, flops=estimate_flops(cfg), params=estimate_params(cfg)))
    settings = SearchSettings(budget=100e6, name="base", band=0, param_budget=2.4e6, out=str(tmp_path))
    rows = baselines_mod.run_baselines(settings, log=logged.append)
    # under 100M: Small 0.5 / 0.75 / 1.0 (2.14M, 2.33M, 2.54M parameters) and Large 0.5 (4.04M)
    assert [r["trial_id"] for r in rows] == ["mobilenet_v3_small_050", "mobilenet_v3_small_075"]
    assert all(estimate_params(cfg) <= 2.4e6 for cfg in trained) and len(trained) == 2
    left_out = [line for line in logged if "parameter budget" in line]
    assert len(left_out) == 2 and all("not trained" in line for line in left_out), logged


def test_cost_params_writes_a_front_in_params(tmp_path):
    assert main(["--out", str(tmp_path), *TINY, "--budget", "20M", "--trials", "2", "--name", "c",
                 "--objective", "pareto", "--cost", "params"]) == 0
    run = tmp_path / "c"
    assert json.loads((run / "run.json").read_text())["settings"]["cost"] == "params"
    study = optuna.load_study(study_name="c", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(run / "study.journal"))))
    done = [t for t in study.trials if t.values is not None]
    assert done and all(t.values[1] == t.user_attrs["row"]["params"] for t in done)   # the front's x is params
    rs = load_runs([run])
    assert has_params_axis(rs)
    lines = params_lines(rs)
    header = lines[lines.index("## Fronts in parameters") + 2]
    assert header.split("|")[3].strip() == "params (M)", lines   # the front table's axis
    front = plot_params(rs, tmp_path)["params_front"][0]
    assert front.stat().st_size > 5_000
