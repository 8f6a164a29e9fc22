"""search.py end to end on the built-in dataset with tiny proxies."""
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from mfsearch.cli.search import main
from mfsearch.common import UsageError, parse_budget, parse_duration
from mfsearch.search import baselines as baselines_mod

REPO = Path(__file__).resolve().parents[1]
SPACE = str(REPO / "tests" / "data" / "tiny_space.yaml")
TINY = ["--epochs", "2", "--data-fraction", "0.02", "--test-fraction", "0.05", "--batch-size", "64",
        "--min-steps", "0", "--band", "0", "--space", SPACE, "--threads", "2", "--confirm-top", "0"]


@pytest.fixture(autouse=True)
def isolated_baseline_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(baselines_mod, "CACHE_DIR", tmp_path / "baseline-cache")


def run_cli(tmp_path, *args):
    code = main(["--out", str(tmp_path / "runs"), *TINY, *args])
    return code


def trials(tmp_path, name):
    return pd.read_parquet(tmp_path / "runs" / name / "trials.parquet")


@pytest.mark.parametrize("text,value", [("150M", 150e6), ("150e6", 150e6), ("0.15G", 150e6), ("2.5e8", 2.5e8)])
def test_budget_formats(text, value):
    assert parse_budget(text) == pytest.approx(value)


def test_duration_formats():
    assert parse_duration("30m") == 1800 and parse_duration("2h") == 7200 and parse_duration("90") == 90
    with pytest.raises(UsageError, match=r"--timeout 'soon' is not a positive duration"):
        parse_duration("soon")
    with pytest.raises(UsageError, match=r"--timeout '0m' is not a positive duration"):
        parse_duration("0m")


@pytest.mark.parametrize("objective", ["accuracy", "pareto"])
def test_optuna_end_to_end(tmp_path, objective):
    assert run_cli(tmp_path, "--budget", "20M", "--trials", "3", "--objective", objective, "--name", "o") == 0
    df = trials(tmp_path, "o")
    assert len(df) == 3 and set(df["status"]) <= {"complete", "pruned", "infeasible", "failed"}
    assert (df.loc[df["status"] != "infeasible", "flops"] <= 20e6).all()
    for col in ("tokens", "token_dim", "width_mult", "resolution", "depth3", "config", "top1_per_epoch"):
        assert col in df.columns
    run = json.loads((tmp_path / "runs" / "o" / "run.json").read_text())
    assert run["status"] == "finished" and run["settings"]["seed"] == 0 and "torch" in run["versions"]
    assert (df["status"] == "complete").any(), df.filter(["status", "error"])
    assert not (df["status"] == "failed").any(), df.filter(["status", "error"])  # so does any failed trial
    import mfsearch
    model = mfsearch.create_model(str(tmp_path / "runs" / "o" / "best.json"), num_classes=10)
    assert mfsearch.estimate_flops(model.config) <= 20e6
    base = pd.read_parquet(tmp_path / "runs" / "o" / "baselines.parquet")
    assert base.empty  # the smallest MobileNetV3 (Small-0.5, 28.9M) is over this budget


def test_the_cpu_space_by_name_and_by_file(tmp_path):
    """`--space mobile_former_cpu` selects the registered space; a file with that `space:` key
    narrows it, and the run records its dimensions and builds its configs."""
    from mfsearch.cli.search import add_arguments, settings_from_args
    from mfsearch.search.evaluate import make_space
    from spaces import MobileFormerCpuSpace
    parser = __import__("argparse").ArgumentParser()
    add_arguments(parser)
    settings = settings_from_args(parser.parse_args(["--budget", "150M", "--space", "mobile_former_cpu"]))
    assert settings.space["space"] == "mobile_former_cpu" and settings.space_file is None
    assert isinstance(make_space(settings), MobileFormerCpuSpace)
    tiny = (REPO / "tests" / "data" / "tiny_space.yaml").read_text().replace("space: mobile_former\n", "")
    path = tmp_path / "tiny_cpu.yaml"
    path.write_text("space: mobile_former_cpu\n" + tiny + "  bridges_2: [false]\n  tokens_3: [1]\n"
                    "  head_expansion: [3]\n")
    assert run_cli(tmp_path, "--budget", "20M", "--trials", "2", "--name", "cpu", "--space", str(path),
                   "--no-baselines") == 0
    df = trials(tmp_path, "cpu")
    assert {"bridges_2", "tokens_3", "dynamic_relu_5", "head_expansion"} <= set(df.columns)
    import mfsearch
    from mfsearch.models import config_from_dict
    for text in df.loc[df["status"] == "complete", "config"]:
        cfg = config_from_dict(json.loads(text))
        assert cfg.head_expansion == 3 and mfsearch.estimate_flops(cfg) <= 20e6
        assert any(b.options().get("bridges") is False for b in cfg.blocks)


def test_infeasible_proposals_are_recorded_not_trained(tmp_path):
    # Seed 0 at 6M: the sampler's three random start-up proposals (deterministic, before
    # any result can steer it) are 7.8M, 5.5M and 13.8M MAdds in the tiny space, so the
    # run holds both over- and under-budget proposals whatever training returns.
    assert run_cli(tmp_path, "--budget", "6M", "--trials", "6", "--name", "tight", "--no-baselines") == 0
    df = trials(tmp_path, "tight").sort_values("trial_id")
    assert len(df) == 6
    assert list(df["flops"].head(3) > 6e6) == [True, False, True], list(df["flops"])
    over, under = df[df["flops"] > 6e6], df[df["flops"] <= 6e6]
    assert len(over) >= 2 and len(under) >= 1
    assert (over["status"] == "infeasible").all()
    assert over["epochs_done"].fillna(0).eq(0).all() and over["train_time"].isna().all()
    assert over["error"].str.contains("over the 6.0M budget").all()
    # and the reverse: every proposal within the budget is trained
    assert under["status"].isin(["complete", "pruned"]).all(), under.filter(["status", "error"])
    assert (under["epochs_done"] > 0).all() and under["train_time"].notna().all()


def test_failed_trials_are_recorded_and_the_study_goes_on(tmp_path):
    assert run_cli(tmp_path, "--budget", "20M", "--trials", "3", "--lr", "1e9", "--name", "nan",
                   "--no-baselines") == 0
    df = trials(tmp_path, "nan")
    assert len(df) == 3
    trained = df[df["status"] != "infeasible"]
    assert (trained["status"] == "failed").all() and trained["error"].str.contains("diverged").all()


def test_same_seed_same_proposals(tmp_path):
    for name in ("a", "b"):
        assert run_cli(tmp_path, "--budget", "20M", "--trials", "4", "--name", name, "--no-baselines") == 0
    cols = ["tokens", "token_dim", "width_mult", "resolution", "depth2", "depth3", "config"]
    a, b = trials(tmp_path, "a"), trials(tmp_path, "b")
    pd.testing.assert_frame_equal(a[cols].reset_index(drop=True), b[cols].reset_index(drop=True))


def test_sampler_seed_mixes_in_the_budget():
    from mfsearch.search.optuna_backend import sampler_seed
    from mfsearch.search.settings import SearchSettings
    at = lambda budget, seed=0: sampler_seed(SearchSettings(budget=budget, seed=seed, name="x"))  # noqa: E731
    assert at(300e6) == at(300e6) and len({at(300e6), at(500e6), at(300e6, seed=1)}) == 3


def test_baselines_are_cached(tmp_path, capsys):
    assert run_cli(tmp_path, "--budget", "50M", "--trials", "1", "--name", "b1") == 0
    assert run_cli(tmp_path, "--budget", "50M", "--trials", "1", "--name", "b2") == 0
    out = capsys.readouterr().out
    assert "(cached)" in out
    b1 = pd.read_parquet(tmp_path / "runs" / "b1" / "baselines.parquet")
    b2 = pd.read_parquet(tmp_path / "runs" / "b2" / "baselines.parquet")
    assert list(b1["final_top1"]) == list(b2["final_top1"]) and len(b1) >= 2


def _cmd(tmp_path, *args):
    return [sys.executable, str(REPO / "search.py"), "--out", str(tmp_path / "runs"), *TINY, *args]


def test_resume_after_sigkill_keeps_results_and_trains_no_architecture_twice(tmp_path):
    args = ["--budget", "20M", "--trials", "5", "--name", "killed", "--no-baselines", "--epochs", "3"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(_cmd(tmp_path, *args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, start_new_session=True)
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith("[2/5]"):
            break
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert any(line.startswith("[2/5]") for line in seen), "".join(seen)
    import optuna
    from optuna.storages.journal import JournalFileBackend
    journal = tmp_path / "runs" / "killed" / "study.journal"
    storage = optuna.storages.JournalStorage(JournalFileBackend(str(journal)))
    before = {t.number: (t.params, t.values) for t in optuna.load_study(study_name="killed", storage=storage).trials
              if t.state.is_finished()}
    assert len(before) >= 2
    done = subprocess.run(_cmd(tmp_path, *args), capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    df = trials(tmp_path, "killed")
    after = optuna.load_study(study_name="killed", storage=storage).trials
    counted = [t for t in after if t.state.name in ("COMPLETE", "PRUNED")
               or (t.state.name == "FAIL" and not t.user_attrs.get("interrupted"))]
    assert len(counted) == 5
    for number, (params, values) in before.items():  # nothing completed was lost or changed
        assert after[number].params == params and after[number].values == values
    # one row per counted trial (the interrupted one was run again, not recorded twice), and every one
    # finished: trained to its end, stopped by the pruner, or over the budget; none failed
    assert len(df) == 5 and df["trial_id"].is_unique, df[["trial_id", "status"]]
    assert df["status"].isin(["complete", "pruned", "infeasible"]).all(), df.filter(["status", "error"])
    assert (df["status"] == "complete").any(), df.filter(["status", "error"])
    # the resumed sampler must not pay for an architecture again: a repeat is a reused row
    trained = df[df["status"].isin(["complete", "pruned"])]
    fresh = trained[trained["reused_from"].isna()] if "reused_from" in trained else trained
    assert not fresh["config"].duplicated().any(), fresh[["trial_id", "config"]]
    reused = trained.dropna(subset=["reused_from"]) if "reused_from" in trained else trained.iloc[:0]
    for _, r in reused.iterrows():
        src = df[df["trial_id"].astype(str) == r["reused_from"]].iloc[0]
        assert src["config"] == r["config"] and src["final_top1"] == r["final_top1"]


def test_top_k_confirmation_writes_the_mean(tmp_path, capsys):
    args = ["--budget", "20M", "--trials", "4", "--name", "conf", "--no-baselines", "--confirm-top", "2",
            "--confirm-seeds", "1", "--final-length", "1"]
    assert run_cli(tmp_path, *args) == 0
    run = tmp_path / "runs" / "conf"
    df, confirm = trials(tmp_path, "conf"), pd.read_parquet(run / "confirm.parquet")
    complete = df[df["status"] == "complete"]
    assert len(complete) >= 2, df[["status", "final_top1"]]
    assert len(confirm) == 2 and set(confirm["seed"]) == {1} and (confirm["backend"] == "confirm").all()
    best = json.loads((run / "best.json").read_text())
    c = best["confirmed"]
    assert c["seeds"] == [0, 1] and len(c["top1"]) == 2
    assert c["top1_mean"] == pytest.approx(sum(c["top1"]) / 2, abs=1e-3)
    # the chosen trial has the best mean of the confirmed ones, whatever its single top-1
    means = {}
    for _, row in confirm.iterrows():
        first = float(df.loc[df["trial_id"].astype(str) == row["confirms"], "final_top1"].iloc[0])
        means[row["confirms"]] = (first + row["final_top1"]) / 2
    assert best["trial_id"] == max(means, key=means.get)
    assert "chosen at the trial protocol over seeds 0, 1" in capsys.readouterr().out
    # --save-weights best (the default): the chosen trial's weights as best.pt, nothing else left
    import mfsearch
    from mfsearch.models.checkpoint import read_checkpoint
    ckpt = read_checkpoint(run / "best.pt")
    chosen = df[df["trial_id"].astype(str) == best["trial_id"]].iloc[0]
    source = chosen.get("reused_from") if isinstance(chosen.get("reused_from"), str) else best["trial_id"]
    assert ckpt["meta"]["trial_id"] == source and ckpt["config"] == best["config"]
    assert not (run / "weights").exists()
    model = mfsearch.load_checkpoint(run / "best.pt")
    assert mfsearch.estimate_flops(model.config) == best["flops"] and not model.training
    lines = (run / "confirm.jsonl").read_text().count("\n")
    assert run_cli(tmp_path, *args) == 0            # a rerun resumes: nothing trained again
    assert (run / "confirm.jsonl").read_text().count("\n") == lines


def _digest(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


BAD = [
    (["--budget", "abc"], "not a number"),
    (["--budget", "0"], "positive"),
    (["--budget=-5M"], "not a number"),
    (["--budget", "1M"], "below the smallest model"),
    (["--budget", "150M", "--dataset", "imagenet22k"], "unknown dataset"),
    (["--budget", "150M", "--backend", "hyperopt"], "unknown backend"),
    (["--budget", "150M", "--objective", "speed"], "unknown objective"),
    (["--budget", "150M", "--dataset", "cifar10", "--data-root", "/nonexistent/cifar"], "not found"),
    (["--budget", "150M", "--dataset", "imagefolder"], "needs --data-root"),
    (["--budget", "150M", "--space", "BROKEN"], "not valid YAML"),
    (["--budget", "150M", "--space", "/nonexistent/space.yaml"], "not found"),
    (["--budget", "150M", "--trials", "-3"], "at least 1"),
    (["--budget", "150M", "--workers", "0"], "at least 1"),
    (["--budget", "150M", "--epochs", "0"], "epochs"),
    (["--budget", "150M", "--data-fraction", "1.5"], "fraction"),
    (["--budget", "150M", "--timeout", "soon"], "duration"),
    (["--budget", "150M", "--out", "/proc/forbidden"], "cannot write"),
    (["--budget", "150M", "--storage", "notaurl"], "not a database URL"),
    (["--budget", "150M", "--address", "auto"], "--backend ray"),
    (["--budget", "150M", "--device", "tpu"], "unknown device"),
    (["--budget", "99M", "--name", "existing"], "exists with different budget"),
    (["--trials", "3"], "required"),
    (["--budget", "150M", "--augment", "blur"], "unknown augment"),
    (["--budget", "150M", "--regularization", "some"], "unknown regularization"),
    (["--budget", "150M", "--base-resolution", "4"], "base resolution"),
    (["--budget", "150M", "--confirm-top", "-1"], "--confirm-top"),
    (["--budget", "150M", "--save-weights", "some"], "--save-weights must be one of"),
    (["--experiment", "experiments/tokens.yaml", "--save-weights", "best"], "every run"),
    (["--budget", "150M", "--space", "mobilenet_v3"], "needs a Mobile-Former space"),
    (["--experiment", "experiments/tokens.yaml", "--device", "tpu"], "unknown device"),
    *([] if torch.cuda.is_available() else   # a study's trainings go to the device too, checked before any
      [(["--experiment", "experiments/tokens.yaml", "--device", "cuda"], "no CUDA device")]),
]


def test_bad_input_gives_one_line_and_exit_2(tmp_path, capsys):
    out = tmp_path / "runs"
    existing = out / "existing"
    existing.mkdir(parents=True)
    (existing / "run.json").write_text(json.dumps({"settings": {
        "budget": 150e6, "backend": "optuna", "objective": "accuracy", "dataset": "synthetic",
        "protocol": {"epochs": 2, "data_fraction": 0.02, "batch_size": 64, "lr": 3e-3, "weight_decay": 0.05,
                     "label_smoothing": 0.1, "warmup_fraction": 0.1, "bn_recal_batches": 5,
                     "test_fraction": 0.05}, "space": None, "seed": 0, "name": "existing"}}))
    (existing / "trials.csv").write_text("trial_id,status\n0,complete\n")
    broken = tmp_path / "broken.yaml"
    broken.write_text("dimensions: {tokens: [1, 2}")
    before = _digest(existing)
    common = ["--epochs", "2", "--data-fraction", "0.02", "--test-fraction", "0.05", "--batch-size", "64",
              "--min-steps", "0", "--band", "0"]
    for i, (args, msg) in enumerate(BAD):
        args = [str(broken) if a == "BROKEN" else a for a in args]
        full = common + ([] if "--out" in args else ["--out", str(out)]) + args
        if i % 14 == 0:  # three as real processes (each imports torch): no traceback reaches the terminal
            r = subprocess.run([sys.executable, str(REPO / "search.py"), *full], capture_output=True, text=True,
                               timeout=120)
            code, err = r.returncode, r.stderr.strip()
        else:
            try:
                code = main(full)
            except SystemExit as exc:  # argparse's own errors
                code = exc.code
            err = capsys.readouterr().err.strip()
        assert code == 2, (args, err[-1500:])
        assert len(err.splitlines()) == 1 and "Traceback" not in err, (args, err)
        assert msg in err, (args, err)
    assert _digest(existing) == before and not (out / "tokens").exists()
    assert sorted(p.name for p in out.iterdir()) == ["existing"]


def test_an_architecture_already_trained_is_reused_not_retrained(tmp_path, monkeypatch):
    from mfsearch.search import evaluate as evaluate_mod
    from mfsearch.search.settings import SearchSettings
    from mfsearch.train import ProxyProtocol
    from spaces import MobileFormerSpace
    protocol = ProxyProtocol(epochs=1, data_fraction=0.02, test_fraction=0.05, batch_size=64)
    settings = SearchSettings(budget=20e6, name="reuse", out=str(tmp_path), protocol=protocol, threads=2,
                              space=MobileFormerSpace.from_file(SPACE).to_dict())
    settings.run_dir.mkdir(parents=True)
    space = evaluate_mod.make_space(settings)
    params = space.encode(space.sample(random.Random(0), max_flops=20e6))
    calls = []
    real = evaluate_mod.train_proxy
    monkeypatch.setattr(evaluate_mod, "train_proxy", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = evaluate_mod.evaluate_params(settings, params, 0)
    second = evaluate_mod.evaluate_params(settings, params, 7)
    assert len(calls) == 1 and first["status"] == "complete"
    assert second["trial_id"] == 7 and second["reused_from"] == "0"
    assert second["final_top1"] == first["final_top1"] and second["config"] == first["config"]


def test_save_weights_all_keeps_one_checkpoint_per_trained_trial(tmp_path):
    import mfsearch
    assert run_cli(tmp_path, "--budget", "20M", "--trials", "3", "--name", "w", "--no-baselines",
                   "--save-weights", "all") == 0
    run = tmp_path / "runs" / "w"
    df = trials(tmp_path, "w")
    trained = df[(df["status"] == "complete") & df.get("reused_from", pd.Series(index=df.index)).isna()]
    assert sorted(p.name for p in (run / "weights").iterdir()) == sorted(f"trial_{t}.pt" for t in trained["trial_id"])
    assert (run / "best.pt").is_file()
    for t in trained.itertuples():
        model = mfsearch.load_checkpoint(run / "weights" / f"trial_{t.trial_id}.pt")
        assert model.config.to_dict() == json.loads(t.config)


def test_a_trial_that_trained_every_epoch_is_never_pruned(tmp_path):
    # two epochs: the median pruner waits one step, so its only chance is after the last epoch, when the
    # training is paid for; a trial below the median then must stay complete, not be discarded as pruned
    args = ["--budget", "20M", "--trials", "8", "--name", "one", "--no-baselines", "--seed", "3"]
    assert run_cli(tmp_path, *args) == 0
    df = trials(tmp_path, "one")
    assert "pruned" not in set(df["status"]) and (df["status"] == "complete").sum() >= 6, df["status"].tolist()
