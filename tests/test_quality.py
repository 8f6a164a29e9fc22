"""The `search_quality` study kind: its smoke size runs and resumes, and the analysis of
each search's pick against a reference truth set, on hand-built folders."""
import json
from pathlib import Path

import pandas as pd
import pytest

from mfsearch.analysis.quality import analyze_quality, arm_summary
from mfsearch.cli.search import main
from mfsearch.common import UsageError
from mfsearch.models import get_config
from mfsearch.records.rows import identity, make_row
from mfsearch.studies import analyze_study, load_study
from mfsearch.train import ProxyProtocol

EXP = Path(__file__).resolve().parents[1] / "experiments"
TRUTH = ProxyProtocol(epochs=8, data_fraction=1.0, test_fraction=1.0)


def _truth_row(variant: str, model: str, top1: float, protocol=TRUTH, **extra) -> dict:
    cfg = get_config(model)
    return make_row(status="complete", flops=150_000_000, params=1, final_top1=top1, score=top1, wall_time=60.0,
                    **identity(f"{variant}/0/truth", "s", "study", cfg, 0, "cifar10", protocol, variant=variant,
                               protocol_name="truth", **extra))


def _write_rows(folder: Path, rows: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_picks_are_set_against_the_reference_set(tmp_path):
    ref = tmp_path / "reference"
    _write_rows(ref, [_truth_row("a", "mobile_former_151m", 80.0), _truth_row("b", "mobile_former_151m", 84.0),
                      _truth_row("mnv3", "mobilenet_v3_large_100", 82.5),
                      _truth_row("other", "mobile_former_151m", 99.0, protocol=ProxyProtocol(epochs=2))])
    study = tmp_path / "study"
    picks = {("default", 0): 83.0, ("default", 1): 83.5, ("random", 0): 78.0, ("random", 1): 84.5}
    _write_rows(study, [_truth_row(f"{a}-seed{s}", "mobile_former_151m", t, arm=a, search_seed=s)
                        for (a, s), t in picks.items()])
    for (a, s), _ in picks.items():
        folder = study / "searches" / f"cifar10-{a}-seed{s}"
        folder.mkdir(parents=True)
        (folder / "best.json").write_text(json.dumps({"final_top1": 50.0, "confirmed": {"top1_mean": 60.0}}))
        pd.DataFrame({"wall_time": [60.0, 120.0]}).to_csv(folder / "trials.csv", index=False)
    meta = {"study": "q", "size": "full", "budget": 150e6, "reference": {"cifar10": str(ref)}}
    _, files, head = analyze_quality(study, meta, tmp_path / "out")
    table = pd.read_csv(tmp_path / "out" / "picks.csv").set_index(["arm", "seed"])
    # the best truth under the same protocol is b's 84.0 (the 99.0 row trained 2 epochs and is left out)
    assert table.loc[("default", 0), "regret"] == pytest.approx(1.0)
    assert table.loc[("random", 1), "regret"] == pytest.approx(-0.5)      # a pick may beat the whole set
    assert table.loc[("default", 1), "vs_mnv3"] == pytest.approx(1.0)
    # 83.0 beats a (80.0) and mnv3 (82.5) of the 3, not b (84.0); 84.5 beats all 3
    assert table.loc[("default", 0), "beats"] == 2 and table.loc[("random", 1), "beats"] == 3
    assert table.loc[("default", 0), "chosen_top1"] == 60.0 and table.loc[("default", 0), "search_min"] == 3.0
    assert table.loc[("default", 0), "fill"] == pytest.approx(1.0)
    summary = arm_summary(table.reset_index()).set_index("arm")
    assert summary.loc["default", "same_answer"] and not summary.loc["random", "same_answer"]  # 78 vs 84.5
    assert summary.loc["default", "regret"] == pytest.approx(0.75)
    assert summary.loc["random", "beats"] == pytest.approx(1.5)            # 78.0 beats none, 84.5 all 3
    report = (tmp_path / "out" / "report.md").read_text()
    assert "3 architectures" in report and "| default | 2 | 83.25 |" in report and "beats (of 3)" in report
    assert "default: truth 83.25%" in head


def test_a_reference_under_another_truth_protocol_gives_no_regret(tmp_path):
    ref, study = tmp_path / "reference", tmp_path / "study"
    _write_rows(ref, [_truth_row("a", "mobile_former_151m", 80.0, protocol=ProxyProtocol(epochs=4))])
    _write_rows(study, [_truth_row("default-seed0", "mobile_former_151m", 83.0, arm="default", search_seed=0)])
    analyze_quality(study, {"budget": 150e6, "reference": {"cifar10": str(ref)}}, tmp_path / "out")
    assert "another truth protocol" in (tmp_path / "out" / "report.md").read_text()
    assert pd.read_csv(tmp_path / "out" / "picks.csv")["regret"].isna().all()


def test_picks_trained_on_another_device_than_the_reference_are_named(tmp_path):
    """A GPU trains under bf16 autocast: a regret against CPU truth rows is computed but says
    so; rows that record no device trained on the CPU."""
    ref, study = tmp_path / "reference", tmp_path / "study"
    _write_rows(ref, [_truth_row("a", "mobile_former_151m", 80.0), _truth_row("b", "mobile_former_151m", 84.0)])
    for device, named in (("cuda:0", True), ("cpu", False), (None, False)):
        _write_rows(study, [_truth_row("default-seed0", "mobile_former_151m", 83.0, arm="default", search_seed=0,
                                       device=device)])
        analyze_quality(study, {"budget": 150e6, "reference": {"cifar10": str(ref)}}, tmp_path / "out")
        report = (tmp_path / "out" / "report.md").read_text()
        assert ("the picks trained on cuda, the reference on cpu" in report) == named
        assert pd.read_csv(tmp_path / "out" / "picks.csv")["regret"].tolist() == [pytest.approx(1.0)]


def test_a_reference_set_still_training_gives_no_regret(tmp_path):
    """Against the best of a part-trained set every regret would look smaller than it is."""
    ref, study = tmp_path / "reference", tmp_path / "study"
    _write_rows(ref, [_truth_row("a", "mobile_former_151m", 80.0)])
    (ref / "run.json").write_text(json.dumps({"study": "t", "kind": "truth", "spec": {
        "variants": {"a": {"model": "mobile_former_151m"}, "b": {"model": "mobile_former_151m"}},
        "sample": {"count": 2}}}))
    _write_rows(study, [_truth_row("default-seed0", "mobile_former_151m", 83.0, arm="default", search_seed=0)])
    analyze_quality(study, {"budget": 150e6, "reference": {"cifar10": str(ref)}}, tmp_path / "out")
    assert "has 1 of its 4 architectures under truth so far" in (tmp_path / "out" / "report.md").read_text()
    assert pd.read_csv(tmp_path / "out" / "picks.csv")["regret"].isna().all()


def test_smoke_size_runs_resumes_and_analyses(tmp_path, capsys):
    """The searches and their picks' truth side by side in 2 worker processes, then resumed
    in this one (one function runs a search and its pick either way)."""
    args = ["--experiment", str(EXP / "search_quality.yaml"), "--out", str(tmp_path)]
    assert main([*args, "--workers", "2", "--threads", "1"]) == 0
    assert "2 at a time" in capsys.readouterr().out
    study = load_study(EXP / "search_quality.yaml", "smoke")
    df = pd.read_parquet(tmp_path / "search_quality" / "trials.parquet")
    assert sorted(df["variant"]) == sorted(f"{a}-seed{s}" for _, a, s in study.runs())
    assert (df["protocol_name"] == "truth").all() and (df["status"] == "complete").all()
    for _, arm, seed in study.runs():   # each truth row trained the search's own pick
        best = json.loads((tmp_path / "search_quality" / "searches" / f"synthetic-{arm}-seed{seed}" /
                           "best.json").read_text())
        row = df[df["variant"] == f"{arm}-seed{seed}"].iloc[0]
        assert json.loads(row["config"]) == best["config"]
        assert json.loads(row["protocol"]) == study.truth["synthetic"].to_dict()
        assert row["threads"] == 1
    assert main(args) == 0
    assert capsys.readouterr().out.count("already done") == len(study.runs())
    changed = tmp_path / "search_quality.yaml"   # the same study with a longer truth: its rows are refused
    changed.write_text((EXP / "search_quality.yaml").read_text().replace(
        "synthetic: {epochs: 1, data_fraction: 0.02", "synthetic: {epochs: 2, data_fraction: 0.02"))
    meta = (tmp_path / "search_quality" / "run.json").read_text()
    assert main(["--experiment", str(changed), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "under another truth protocol" in err and "delete that row" in err
    assert (tmp_path / "search_quality" / "run.json").read_text() == meta   # nothing rewritten
    folder, files, _ = analyze_study(tmp_path / "search_quality")
    report = (folder / "report.md").read_text()
    assert "| default | 1 |" in report and "no reference set" in report


def test_bad_arm_is_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text((EXP / "search_quality.yaml").read_text().replace("random: {sampler: random}",
                                                                     "random: {sampler: random, epochs: 3}"))
    assert main(["--experiment", str(bad), "--size", "full", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown settings ['epochs']" in err


def test_regrets_follow_each_pick_when_datasets_interleave(tmp_path):
    ref, study = tmp_path / "reference", tmp_path / "study"
    _write_rows(ref, [_truth_row("a", "mobile_former_151m", 80.0)])
    rows = [_truth_row("default-seed0", "mobile_former_151m", 79.0, arm="default", search_seed=0),
            {**_truth_row("default-seed0", "mobile_former_151m", 50.0, arm="default", search_seed=0),
             "dataset": "shapes"},
            _truth_row("default-seed1", "mobile_former_151m", 77.0, arm="default", search_seed=1)]
    _write_rows(study, rows)
    analyze_quality(study, {"budget": 150e6, "reference": {"cifar10": str(ref)}}, tmp_path / "out")
    picks = pd.read_csv(tmp_path / "out" / "picks.csv")
    assert list(picks["regret"].round(2).fillna(-99)) == [1.0, -99, 3.0]   # shapes has no reference set


def test_an_arm_may_search_another_space_under_a_parameter_budget(tmp_path):
    f = tmp_path / "q.yaml"
    f.write_text((EXP / "search_quality.yaml").read_text().replace(
        "random: {sampler: random}", "random: {sampler: random, space: mobile_former_cpu, param_budget: 5M}"))
    study = load_study(f, "full")
    d = study.datasets[0]
    cpu, default = study.settings(d, "random", 0, tmp_path), study.settings(d, "default", 0, tmp_path)
    assert cpu.space["space"] == "mobile_former_cpu" and cpu.param_budget == 5e6
    assert default.space is None and default.param_budget is None
    f.write_text(f.read_text().replace("param_budget: 5M", "param_budget: lots"))
    with pytest.raises(UsageError, match="random"):
        load_study(f, "full")


def test_a_pick_already_trained_under_truth_is_reused(tmp_path, capsys):
    """Two arms with one setting search alike and pick one architecture: the second's truth row
    copies the first's (naming it) instead of training it again."""
    f = tmp_path / "twins.yaml"
    one = "{trials: 1, confirm_top: 0, baselines: false}"
    f.write_text((EXP / "search_quality.yaml").read_text().replace(
        "default: {trials: 2, confirm_top: 1, baselines: false}", f"default: {one}").replace(
        "random: {trials: 1, confirm_top: 0, baselines: false, sampler: random}", f"twin: {one}"))
    assert main(["--experiment", str(f), "--out", str(tmp_path)]) == 0
    assert "synthetic-twin-seed0: its pick is default-seed0's, whose truth is done: reused" in capsys.readouterr().out
    df = pd.read_parquet(tmp_path / "search_quality" / "trials.parquet").set_index("variant")
    assert df.loc["twin-seed0", "truth_of"] == "default-seed0" and pd.isna(df.loc["default-seed0", "truth_of"])
    assert df.loc["twin-seed0", "config"] == df.loc["default-seed0", "config"]
    assert df.loc["twin-seed0", "final_top1"] == df.loc["default-seed0", "final_top1"]
    assert df.loc["twin-seed0", "arm"] == "twin"
    folder, _, _ = analyze_study(tmp_path / "search_quality")
    assert "Same pick, one truth training: twin seed 0 picked default-seed0's architecture." in \
        (folder / "report.md").read_text()
