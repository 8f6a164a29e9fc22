"""analyze.py and mfsearch.analysis on hand-built runs whose fronts, hypervolumes and
bucket comparisons are worked out by hand below."""
import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mfsearch.analysis import (
    AnalysisError,
    analyze,
    bucket_edges,
    compare_fronts,
    design_space_edfs,
    hypervolume,
    latest_run,
    load_runs,
    pareto_front,
    progress,
    reach_x,
    step_value,
    summarize,
)
from mfsearch.records.rows import make_row, to_frame
from mfsearch.records.tables import write_table

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("analyze_cli", REPO / "analyze.py")
cli = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cli)
M = 1e6
PROTOCOL = {"epochs": 3, "data_fraction": 0.5, "batch_size": 128, "lr": 0.003}

# (status, MAdds in M, top-1): the complete front is (10, 20), (20, 30), (40, 40):
# (20, 25) loses the tie at equal x, (40, 40) appears twice, (30, 28) and (50, 35) are
# dominated, the pruned 50 % must not count, the infeasible/failed have no accuracy.
TRIALS = [("complete", 20, 30), ("complete", 10, 20), ("complete", 20, 25), ("complete", 30, 28),
          ("complete", 40, 40), ("complete", 40, 40), ("complete", 50, 35), ("pruned", 15, 50),
          ("infeasible", 200, None), ("failed", 60, None)]
# MobileNetV3 front: (15, 18), (25, 26), (60, 38); (90, 36) is dominated
BASELINES = [("mobilenet_v3_small_050", 15, 18), ("mobilenet_v3_small_100", 25, 26),
             ("mobilenet_v3_large_075", 60, 38), ("mobilenet_v3_large_100", 90, 36)]
BUDGET = 100 * M
# hypervolume at reference (100M, 0 %), in M x %
HV_MF = (20 - 10) * 20 + (40 - 20) * 30 + (100 - 40) * 40          # 3200
HV_MNV3 = (25 - 15) * 18 + (60 - 25) * 26 + (100 - 60) * 38        # 2610


def mf_config(i: int) -> dict:
    return {"family": "mobile_former", "tokens": 1 + i % 6, "token_dim": 64 + 32 * (i % 3),
            "width_mult": 0.5 + 0.25 * (i % 3), "resolution": 128 + 32 * (i % 4),
            "blocks": [["lite", 3, 12, 1, 2, 0], ["down", 4 + i % 3, 24, 1, 2, 4], ["block", 6, 24, 1 + i % 2, 1, 0]]}


def write_run(folder: Path, trials=TRIALS, baselines=BASELINES, budget=BUDGET, protocol=PROTOCOL,
              dataset="synthetic", started="2026-01-01T10:00:00", backend="optuna", status="finished") -> Path:
    folder.mkdir(parents=True)
    common = dict(run=folder.name, seed=0, dataset=dataset, protocol=protocol)
    if trials is not None:
        rows = [make_row(trial_id=i, backend=backend, family="mobile_former", status=s, config=mf_config(i),
                         flops=int(f * M), params=int(3e6 + i * 1e5), final_top1=t, best_top1=t, **common)
                for i, (s, f, t) in enumerate(trials)]
        write_table(to_frame(rows), folder, "trials")
    if baselines is not None:
        rows = [make_row(trial_id=name, backend="baseline", family="mobilenet_v3", status="complete",
                         config={"family": "mobilenet_v3", "variant": name.split("_")[2],
                                 "width_mult": int(name[-3:]) / 100, "resolution": 224},
                         flops=int(f * M), params=int(2.5e6), final_top1=t, best_top1=t, **common)
                for name, f, t in baselines]
        write_table(to_frame(rows), folder, "baselines")
    settings = {"budget": budget, "backend": backend, "dataset": dataset, "protocol": protocol, "seed": 0,
                "name": folder.name}
    (folder / "run.json").write_text(json.dumps({
        "settings": settings, "status": status, "started": started,
        "versions": {"mfsearch": "0.1.0", "torch": "x"}, "git_commit": "abc"}))
    return folder


@pytest.fixture(scope="module")
def main_run(tmp_path_factory):
    """One full analysis shared by the report and figure tests (figures take seconds)."""
    run = write_run(tmp_path_factory.mktemp("runs") / "hand")
    return run, analyze([run])


# ---- fronts and numbers --------------------------------------------------------------

def test_pareto_front_ties_and_order(tmp_path):
    rs = load_runs([write_run(tmp_path / "r")])
    front = pareto_front(rs.trials)
    assert list(zip(front["flops"] / M, front["final_top1"])) == [(10, 20), (20, 30), (40, 40)]
    pts = pd.DataFrame({"x": [3, 1, 1, 2, 2, 2], "y": [5, 1, 1, 4, 3, 4]})
    front = pareto_front(pts, "x", "y")
    assert list(zip(front["x"], front["y"])) == [(1, 1), (2, 4), (3, 5)]
    assert pareto_front(pts.iloc[:0], "x", "y").empty


def test_hypervolume_by_hand(tmp_path):
    assert hypervolume([(1, 1), (2, 3)], (4, 0)) == pytest.approx(1 * 1 + 2 * 3)
    # dominated, duplicate and out-of-box points change nothing; y_ref shifts heights
    assert hypervolume([(2, 3), (1, 1), (2, 2), (1, 1), (5, 9), (3, -1)], (4, 0)) == pytest.approx(7)
    assert hypervolume([(1, 1), (2, 3)], (4, 0.5)) == pytest.approx(1 * 0.5 + 2 * 2.5)
    assert hypervolume([], (4, 0)) == 0.0
    rs = load_runs([write_run(tmp_path / "r")])
    assert rs.reference == (BUDGET, 0.0)
    assert hypervolume(pareto_front(rs.trials), rs.reference) / M == pytest.approx(HV_MF)
    assert hypervolume(rs.baselines, rs.reference) / M == pytest.approx(HV_MNV3)


def test_step_and_reach():
    front = [(10, 20), (20, 30), (40, 40)]
    np.testing.assert_array_equal(step_value(front, [5, 10, 25, 100]), [np.nan, 20, 30, 40])
    np.testing.assert_array_equal(reach_x(front, [15, 20, 35, 41]), [10, 10, 40, np.nan])


def test_compare_fronts_by_hand():
    mf = [(10, 20), (20, 30), (40, 40)]
    mnv3 = [(15, 18), (25, 26), (60, 38), (90, 36)]
    cmp = compare_fronts(mf, mnv3, [0, 20, 50, 100], "x", "y")
    # (0, 20]: MF (20, 30) vs MNv3 step at 20 = 18; MNv3 (15, 18) reached by MF at 10
    # (20, 50]: MF (40, 40) vs 26; MNv3 (25, 26) reached at 20
    # (50, 100]: no MF point; MNv3 (60, 38) reached at 40
    np.testing.assert_allclose(cmp["top1_gain"], [12, 14, np.nan])
    np.testing.assert_allclose(cmp["b_y_at_a"], [18, 26, np.nan])
    np.testing.assert_allclose(cmp["a_x_at_b"], [10, 20, 40])
    np.testing.assert_allclose(cmp["flops_saving"], [5, 5, 20])
    np.testing.assert_allclose(cmp["flops_saving_pct"], [100 / 3, 20, 100 / 3])
    # a MobileNetV3 the Mobile-Former front never reaches, and one smaller than any MF point
    cmp = compare_fronts([(30, 10)], [(20, 50)], [0, 100], "x", "y")
    assert math.isnan(cmp["a_x_at_b"][0]) and math.isnan(cmp["flops_saving"][0])
    assert cmp["b_y_at_a"][0] == 50 and cmp["top1_gain"][0] == -40


def test_bucket_edges():
    assert bucket_edges([10, 20, 30, 40, 50, 60], 100, n=3) == [0.0, 27.0, 43.0, 100.0]
    assert bucket_edges([], 100) == [0.0, 100.0]
    assert bucket_edges([5, 5, 5], 100) == [0.0, 5.0, 100.0]


def test_progress_counts_every_trial(tmp_path):
    rs = load_runs([write_run(tmp_path / "r")])
    p = progress(rs.trials, rs.reference)
    assert list(p["trial"]) == list(range(1, len(TRIALS) + 1))
    # trial order follows trial_id: (20, 30) first, then (10, 20), ...; pruned 50 % never counts
    assert list(p["best_top1"]) == [30, 30, 30, 30, 40, 40, 40, 40, 40, 40]
    assert p["hypervolume"].iloc[0] / M == pytest.approx((100 - 20) * 30)
    assert p["hypervolume"].iloc[-1] / M == pytest.approx(HV_MF)
    assert p["hypervolume"].is_monotonic_increasing


def test_flop_matched_edf_weights():
    df = pd.DataFrame({"family": ["mobile_former"] * 4 + ["mobilenet_v3"] * 2 + ["mobile_former"],
                       "status": "complete", "flops": [10, 10, 10, 40, 10, 40, 500],
                       "final_top1": [30, 20, 10, 50, 25, 35, 90]})
    cmp = design_space_edfs(df, n_bins=2)
    assert cmp.flop_range == (10, 40)
    mf, mn = cmp.edfs
    assert mf.n == 4 and mn.n == 2        # the 500-MAdds model lies outside the common range
    # the lone 40-MAdds model carries its bin's half of the weight; the three at 10 share the other half
    np.testing.assert_allclose(mf.errors, [50, 70, 80, 90])
    np.testing.assert_allclose(mf.cdf, [0.5, 0.5 + 1 / 6, 0.5 + 2 / 6, 1.0])
    np.testing.assert_allclose(mn.cdf, [0.5, 1.0])
    disjoint = design_space_edfs(df.assign(flops=[1, 1, 1, 2, 50, 60, 3]))
    assert disjoint.flop_range is None and [e.n for e in disjoint.edfs] == [5, 2]


# ---- loading ---------------------------------------------------------------------------

def test_tidy_frame_tags_and_features(tmp_path):
    rs = load_runs([write_run(tmp_path / "a")])
    df = rs.df
    assert set(df["source"]) == {"trial", "baseline"}
    assert (df[["run", "backend", "dataset"]].drop_duplicates().values.tolist()
            == [["a", "optuna", "synthetic"]])
    assert json.loads(df["protocol"].iloc[0]) == PROTOCOL
    first = rs.trials.iloc[1]   # trial 1: tokens 2, token_dim 96, width 0.75, res 160
    assert (first["tokens"], first["token_dim"], first["width_mult"], first["resolution"]) == (2, 96, 0.75, 160)
    assert first["depth"] == 1 + 1 + 2 and first["expansion"] == pytest.approx((3 + 5 + 6) / 3)
    assert first["summary"] == "2x96 tok, w0.75, d4, r160"
    assert rs.baselines.iloc[0]["summary"] == "MNv3-S 0.5, r224"


def test_merging_budgets_dedupes_shared_baselines(tmp_path):
    a = write_run(tmp_path / "a", budget=50 * M)
    b = write_run(tmp_path / "b", budget=150 * M, started="2026-01-02T10:00:00")
    rs = load_runs([a, b])
    assert rs.reference == (150 * M, 0.0)
    assert len(rs.trials) == 2 * len(TRIALS) and len(rs.baselines) == len(BASELINES)
    assert latest_run(tmp_path) == b


def test_mixed_protocols_refused_unless_allowed(tmp_path):
    a = write_run(tmp_path / "a")
    b = write_run(tmp_path / "b", protocol={**PROTOCOL, "epochs": 1}, dataset="cifar10")
    with pytest.raises(AnalysisError) as err:
        load_runs([a, b])
    msg = str(err.value)
    assert "\n" not in msg and "dataset synthetic vs cifar10" in msg and "epochs 3 vs 1" in msg
    assert "--allow-mixed" in msg
    assert load_runs([a, b], allow_mixed=True).mixed


@pytest.mark.parametrize("make, expect", [
    (lambda p: p, "no such folder"),
    (lambda p: (p.mkdir(), p)[1], "no run.json"),
    (lambda p: write_run(p / "inner").parent, "holds 1 runs (inner)"),
    (lambda p: write_run(p, trials=None, baselines=None), "no trials.parquet or baselines.parquet"),
    (lambda p: (write_run(p), (p / "trials.parquet").write_text("not parquet"))[0], "unreadable"),
    (lambda p: (write_run(p), (p / "run.json").write_text("{"))[0], "run.json: unreadable"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, make, expect):
    folder = make(tmp_path / "x")
    assert cli.main([str(folder), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert expect in err and err.count("\n") == 1 and err.startswith("analyze.py: error:")


def test_cli_latest_run_and_no_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main([]) == 2
    assert "no runs/ folder" in capsys.readouterr().err
    (tmp_path / "runs").mkdir()
    assert cli.main([]) == 2
    assert "holds no run folders" in capsys.readouterr().err
    write_run(tmp_path / "runs" / "old", trials=[("complete", 10, 10)], baselines=None,
              started="2026-01-01T00:00:00")
    write_run(tmp_path / "runs" / "new", trials=[("complete", 10, 10)], baselines=None,
              started="2026-03-01T00:00:00")
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    assert "new" in out.splitlines()[0] and (tmp_path / "runs" / "new" / "analysis" / "report.md").is_file()
    assert "a single trial" in out


def test_cli_subprocess_bad_folder_no_traceback(tmp_path):
    r = subprocess.run([sys.executable, str(REPO / "analyze.py"), str(tmp_path / "missing")], cwd=tmp_path,
                       capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


# ---- report and figures ----------------------------------------------------------------

def test_report_numbers_are_the_librarys(main_run):
    run, result = main_run
    assert result.out_dir == run / "analysis"
    report = (result.out_dir / "report.md").read_text()
    s = summarize(load_runs([run]))
    assert s.hypervolume / M == pytest.approx(HV_MF) and s.baseline_hypervolume / M == pytest.approx(HV_MNV3)
    assert f"| Mobile-Former | {s.hypervolume / M:.1f} | {100 * s.hypervolume / (BUDGET * 100):.2f} |" in report
    assert f"| MobileNetV3 | {s.baseline_hypervolume / M:.1f} |" in report
    assert "| Mobile-Former | 3200.0 | 32.00 | 3 |" in report
    assert "reference point (100.0M MAdds, 0 %)" in report
    for i, (_, row) in enumerate(s.front.iterrows(), 1):
        assert (f"| {i} | hand | {row['trial_id']} | {row['summary']} | {row['flops'] / M:.1f} | "
                f"{row['params'] / M:.2f} | {row['final_top1']:.2f} |") in report
    # the bucket table holds compare_fronts' numbers
    for _, r in s.comparison.iterrows():
        if np.isfinite(r["top1_gain"]):
            assert f"| {r['top1_gain']:+.2f} |" in report
        assert f"{r['flops_saving'] / M:+.1f} M ({r['flops_saving_pct']:+.0f} %)" in report
    for name in ("pareto", "progress", "dimensions", "edf"):
        assert f"![{name}]({name}.png)" in report
    assert "synthetic" in report and "optuna" in report and "mfsearch 0.1.0" in report


def test_figures_written_and_readable(main_run):
    _, result = main_run
    for name in ("pareto", "progress", "dimensions", "edf"):
        png, svg = result.out_dir / f"{name}.png", result.out_dir / f"{name}.svg"
        assert png.stat().st_size > 20_000 and svg.stat().st_size > 5_000
        with Image.open(png) as im:
            assert im.size[0] >= 800 and im.size[1] >= 500
        assert "hypervolume reference" in svg.read_text()      # stated on every figure


@pytest.mark.parametrize("trials, baselines, note", [
    ([("pruned", 10, 10), ("failed", 20, None)], BASELINES, "no trial completed"),
    ([("infeasible", 120, None)] * 3, BASELINES, "all 3 trials were infeasible"),
    ([("complete", 30, 25)], None, "a single trial"),
    (None, BASELINES, "no search trials"),
])
def test_edge_cases_still_draw(tmp_path, trials, baselines, note):
    run = write_run(tmp_path / "edge", trials=trials, baselines=baselines, status="running")
    result = analyze([run], out=tmp_path / "out")
    assert any(note in n for n in result.summary.notes)
    assert any("is running" in n for n in result.summary.notes)
    assert note in (tmp_path / "out" / "report.md").read_text()
    assert all(p.stat().st_size > 5_000 for p in result.files if p.suffix == ".png")
    if trials == [("complete", 30, 25)]:
        assert result.summary.hypervolume / M == pytest.approx((100 - 30) * 25)


def test_front_configs_are_named_apart_and_leave_other_files(tmp_path):
    """The latency front's configs: a trial id that is not a file name is made one, two runs
    named alike keep both points (a suffix), files that are not front configs stay, and a run
    set without latency writes and removes nothing."""
    from types import SimpleNamespace

    from mfsearch.analysis.latency import write_front_configs
    from mfsearch.models import get_config
    cfg = json.dumps(get_config("mobile_former_26m").to_dict())
    trials = pd.DataFrame({"run": ["50M-mobile_former", "50M_mobile_former", "x"], "trial_id": ["3", "3", "a/0/b"],
                           "status": "complete", "latency_ms": [1.0, 2.0, 3.0], "final_top1": [10.0, 20.0, 30.0],
                           "config": cfg})
    front = tmp_path / "front"
    front.mkdir()
    (front / "retimed.json").write_text("[]")
    (front / "mf_old_t1.json").write_text("{}")
    none = SimpleNamespace(trials=trials.drop(columns="latency_ms"), baselines=pd.DataFrame())
    assert write_front_configs(none, tmp_path) == [] and (front / "mf_old_t1.json").is_file()
    paths = write_front_configs(SimpleNamespace(trials=trials, baselines=trials.iloc[:0]), tmp_path)
    assert [p.name for p in paths] == ["mf_50M_mf_t3.json", "mf_50M_mf_t3_2.json", "mf_x_ta_0_b.json"]
    assert sorted(p.name for p in front.iterdir()) == sorted([p.name for p in paths] + ["retimed.json"])
    assert json.loads(paths[0].read_text()) == json.loads(cfg)
