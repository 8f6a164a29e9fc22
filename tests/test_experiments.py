"""Every study file loads at both sizes and its smoke size runs end to end."""
import importlib.util
import json
import os
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

import mfsearch
from mfsearch.cli.search import main
from mfsearch.common import UsageError
from mfsearch.studies import load_study, run_study

_spec = importlib.util.spec_from_file_location("analyze_cli", Path(__file__).resolve().parents[1] / "analyze.py")
_analyze = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_analyze)
analyze_main = _analyze.main

EXP = Path(__file__).resolve().parents[1] / "experiments"
# classification studies; detection and search-quality studies have their own tests (test_detection.py,
# test_quality.py)
STUDIES = sorted(p.stem for p in EXP.glob("*.yaml")
                 if yaml.safe_load(p.read_text()).get("kind") not in ("detection", "search_quality"))


def _smoke_runs(names: list[str]) -> list[str]:
    """The studies that train, one for each (kind, smoke size) pair: two files whose smoke
    sizes are equal (search_truth_shapes is search_truth on other data) run the same smoke."""
    seen, out = set(), []
    for name in names:
        spec = yaml.safe_load((EXP / f"{name}.yaml").read_text())
        # the smoke size as it runs: the file's settings with the size's over them (what names it aside)
        smoke = {k: v for k, v in spec.items() if k not in ("study", "description", "sizes")}
        key = json.dumps({**smoke, **spec.get("sizes", {}).get("smoke", {})}, sort_keys=True)
        if not load_study(EXP / f"{name}.yaml").search and key not in seen:
            seen.add(key)
            out.append(name)
    return out


TRAINING_STUDIES = _smoke_runs(STUDIES)


def test_the_studies_provided():
    assert {"paper_presets", "tokens", "token_dim", "width_depth_resolution", "ablations",
            "proxy_fidelity", "budgets", "proxy_calibration", "builtin_fidelity", "attention"} <= set(STUDIES)


@pytest.mark.parametrize("name", STUDIES)
def test_full_size_loads(name):
    study = load_study(EXP / f"{name}.yaml", "full")
    names = {d.name for d in study.datasets}
    # real photos, or the built-in task where the study's name says so (search_truth_shapes: its harder
    # setting; latency_front_seeds_shapes: latency_front's shapes size)
    assert names <= {"cifar10", "shapes"} and "cifar10" in names or \
        name.endswith("_shapes") and len(names) == 1 and names <= {"shapes", "shapes_hard"}
    if study.search:
        assert len(study.protocols) == 1 and len(study.search.trials) == len(study.search.budgets)
        if name == "budgets":
            assert study.search.budgets == [25e6, 50e6, 100e6, 150e6, 300e6, 500e6]
        if name == "latency_front":   # both spaces, a front in measured latency
            assert study.search.spaces == ("mobile_former", "mobile_former_cpu")
            assert (study.search.objective, study.search.cost) == ("pareto", "latency")
        return
    assert len(study.variants) >= (1 if name == "attention" else 4)
    if study.budget:
        for cfg in study.variants.values():
            assert 0.9 * study.budget <= mfsearch.estimate_flops(cfg) <= study.budget


@pytest.mark.parametrize("name", TRAINING_STUDIES)
def test_smoke_size_runs_and_resumes(tmp_path, name, capsys):
    assert main(["--experiment", str(EXP / f"{name}.yaml"), "--out", str(tmp_path)]) == 0
    df = pd.read_parquet(tmp_path / name / "trials.parquet")
    study = load_study(EXP / f"{name}.yaml", "smoke")
    assert len(df) == len(study.jobs())
    assert sorted(set(df["dataset"])) == sorted(d.name for d in study.datasets)
    assert (df["status"] == "complete").all(), df.filter(["variant", "status", "error"])  # a failed run fails it
    assert {"variant", "protocol_name"} <= set(df.columns)
    assert json.loads((tmp_path / name / "run.json").read_text())["kind"] == study.kind
    capsys.readouterr()
    assert main(["--experiment", str(EXP / f"{name}.yaml"), "--out", str(tmp_path)]) == 0
    assert f"{len(df)} of {len(df)} already done" in capsys.readouterr().out
    assert analyze_main([str(tmp_path / name)]) == 0
    report = (tmp_path / name / "analysis" / "report.md").read_text()
    for variant in study.variants:
        assert variant in report
    if study.analysis == "calibration":
        assert (tmp_path / name / "analysis" / "fidelity.png").stat().st_size > 10_000
        for proto in study.protocols:
            assert f"| {proto} |" in report
        assert "Kendall tau" in report and "partial" in report
        return
    if study.analysis == "truth":   # every cheap protocol against the long one, with the regret of its pick
        assert (tmp_path / name / "analysis" / "fidelity.png").stat().st_size > 10_000
        for proto in set(study.protocols) - {"truth"}:
            assert f"| {proto} |" in report
        assert "regret" in report and "seed spread" in report
        return
    assert (tmp_path / name / "analysis" / "study.png").stat().st_size > 10_000
    if len(study.datasets) > 1:  # the same variants on several datasets: do their rankings agree?
        assert "near chance" in report and "Agreement between datasets" in report
        assert (tmp_path / name / "analysis" / "rank.png").stat().st_size > 10_000
        return
    if len(study.protocols) == 2:
        assert "Kendall tau" in report and "Spearman rho" in report
        assert (tmp_path / name / "analysis" / "rank.png").stat().st_size > 10_000
    if study.paper:  # one smoke seed: no interval, so no verdict either way
        assert "## Against the paper" in report and "n/a (one seed)" in report
    if name == "paper_presets":
        assert (tmp_path / name / "analysis" / "comparison.png").stat().st_size > 10_000
        assert "published" in report


def test_budgets_study_runs_one_search_per_budget_and_merges_them(tmp_path, capsys):
    args = ["--experiment", str(EXP / "budgets.yaml"), "--out", str(tmp_path)]
    assert main(args) == 0
    study = load_study(EXP / "budgets.yaml", "smoke")
    for budget, trials in zip(study.search.budgets, study.search.trials):
        df = pd.read_parquet(tmp_path / "budgets" / f"{budget / 1e6:g}M" / "trials.parquet")
        assert len(df) == trials
        trained = df[df["status"] != "infeasible"]
        assert (trained["flops"] <= budget).all()
        assert (df["status"] == "complete").any(), (budget, df.filter(["status", "error"]))
    assert any((pd.read_parquet(tmp_path / "budgets" / f"{b / 1e6:g}M" / "trials.parquet")["status"]
                == "infeasible").any() for b in study.search.budgets)
    capsys.readouterr()
    assert main(args) == 0
    assert capsys.readouterr().out.count("already finished") == len(study.search.budgets)
    # more trials for the first budget: that search resumes and adds them, the other is left alone
    more = tmp_path / "more.yaml"
    more.write_text((EXP / "budgets.yaml").read_text().replace("{budgets: [23M, 32M], trials: 2}",
                                                               "{budgets: [23M, 32M], trials: [3, 2]}"))
    assert main(["--experiment", str(more), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "search 32M: already finished" in out and "search 23M: already finished" not in out
    assert len(pd.read_parquet(tmp_path / "budgets" / "23M" / "trials.parquet")) == 3
    assert analyze_main([str(tmp_path / "budgets")]) == 0
    report = (tmp_path / "budgets" / "analysis" / "report.md").read_text()
    assert all(f"{b / 1e6:g}M" in report for b in study.search.budgets)
    assert (tmp_path / "budgets" / "analysis" / "pareto.png").stat().st_size > 10_000
    # a search stopped before writing any table: the others are still analysed, with a note
    last = tmp_path / "budgets" / f"{study.search.budgets[-1] / 1e6:g}M"
    for table in last.glob("*.parquet"):
        table.unlink()
    capsys.readouterr()
    assert analyze_main([str(tmp_path / "budgets")]) == 0
    assert f"{last.name} has no results yet" in capsys.readouterr().out
    # the file now asks for another protocol: refused before anything is written
    changed = tmp_path / "budgets.yaml"
    changed.write_text((EXP / "budgets.yaml").read_text().replace("epochs: 1,", "epochs: 2,"))
    before = (tmp_path / "budgets" / "run.json").read_text()
    assert main(["--experiment", str(changed), "--out", str(tmp_path)]) == 2
    assert "other settings" in capsys.readouterr().err
    assert (tmp_path / "budgets" / "run.json").read_text() == before


def test_a_search_study_runs_one_search_per_space(tmp_path, monkeypatch):
    """Unit level (the searches themselves are search.py's, tested there): each space of the
    file gets its own search, named after it, with that space and the file's cost."""
    from mfsearch.studies import budgets
    seen = []
    monkeypatch.setattr(budgets, "run_search", lambda settings: seen.append(settings))
    run_study(load_study(EXP / "latency_front.yaml", "smoke"), out=tmp_path)
    assert [s.name for s in seen] == ["23M-mobile_former", "23M-mobile_former_cpu"]
    assert seen[0].space is None and seen[1].space["space"] == "mobile_former_cpu"   # the default by name: no space
    assert {s.cost for s in seen} == {"latency"} and {s.space_file for s in seen} == {None}
    bad = tmp_path / "bad.yaml"
    bad.write_text((EXP / "latency_front.yaml").read_text().replace("space: [mobile_former, mobile_former_cpu]}",
                                                                    "space: [mobile_former, nope]}"))
    with pytest.raises(UsageError, match="space file nope not found"):
        load_study(bad, "smoke")
    seen.clear()   # budget outermost, so a study stopped part-way has compared the spaces at its first budgets
    two = tmp_path / "two.yaml"
    two.write_text((EXP / "latency_front.yaml").read_text().replace("budgets: [23M]", "budgets: [23M, 40M]"))
    run_study(load_study(two, "smoke"), out=tmp_path / "two")
    assert [s.name for s in seen] == ["23M-mobile_former", "23M-mobile_former_cpu", "40M-mobile_former",
                                      "40M-mobile_former_cpu"]


def test_resume_refuses_rows_from_a_changed_study(tmp_path):
    src = (EXP / "tokens.yaml").read_text()
    first = tmp_path / "tokens.yaml"
    first.write_text(src)
    assert main(["--experiment", str(first), "--out", str(tmp_path / "runs")]) == 0
    first.write_text(src.replace("epochs: 1,", "epochs: 2,"))
    with pytest.raises(UsageError, match="different version"):
        run_study(load_study(first, "smoke"), out=tmp_path / "runs")


BAD_STUDIES = [  # (file body without its `sizes`, what the one-line error must name)
    ("base: mobile_former_26m\nvariants: {a: {tokens: 0}}", "tokens"),
    ("search: {budgets: [10M], trials: 2, speed: 3}", "budgets"),
    ("search: {budgets: [ten]}", "ten"),
    ("search: {budgets: 25M}", "non-empty list"),
    ("search: {budgets: [25M], trials: 0}", "trials must be at least 1"),
    ("search: {budgets: [25M, 50M], trials: [3]}", "2 budgets but 1 trial counts"),
    ("search: {budgets: [25M], space: [mobile_former, other/mobile_former.yaml]}", "two spaces named"),
    ("base: mobile_former_26m\nvariants: {a: {}}\npaper: {reference: b}", "lacks: b"),
    ("base: mobile_former_26m\nvariants: {a: {}}\ndatasets: {shapes: {}, imagenet: {}}", "unknown dataset.*imagenet"),
    ("base: mobile_former_26m\nvariants: {a: {}}\ndataset: shapes\ndatasets: {shapes: {}}", "not both"),
    ("base: mobile_former_26m\nvariants: {a: {}}\ndatasets: {shapes: {path: x}}", "root: PATH"),
    ("search: {budgets: [25M]}\ndatasets: {shapes: {}, synthetic: {}}", "one dataset"),
]


@pytest.mark.parametrize("body,match", BAD_STUDIES)
def test_bad_study_files(tmp_path, body, match):
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"study: x\n{body}\nsizes: {{smoke: {{}}}}\n")
    with pytest.raises(UsageError, match=match):
        load_study(bad, "smoke")


def test_missing_study_file_or_size(tmp_path):
    with pytest.raises(UsageError, match="no size"):
        load_study(EXP / "tokens.yaml", "huge")
    with pytest.raises(UsageError, match="not found"):
        load_study(tmp_path / "missing.yaml")


def test_a_study_keeps_every_runs_weights_when_asked(tmp_path):
    args = ["--experiment", str(EXP / "attention.yaml"), "--out", str(tmp_path), "--save-weights", "all"]
    assert main(args) == 0
    weights = sorted(p.name for p in (tmp_path / "attention" / "weights").iterdir())
    assert weights == ["mobile_former_52m-seed0-default.pt"]
    model = mfsearch.load_checkpoint(tmp_path / "attention" / "weights" / weights[0])
    assert model.config == mfsearch.get_config("mobile_former_52m") and model.num_classes == 10


def test_searches_over_two_spaces_get_a_front_each(tmp_path):
    """A search study over two spaces: the merged analysis, and one per space beside it
    (built from a committed search's tables, so nothing trains)."""
    from mfsearch.studies import analyze_study
    src = Path(__file__).resolve().parents[1] / "docs" / "results" / "latency_search" / "shapes"
    study = tmp_path / "latency_front"
    names = ["150M-mobile_former", "150M-mobile_former_cpu"]
    for name in names:
        run = study / name
        run.mkdir(parents=True)
        meta = json.loads((src / "run.json").read_text())
        meta["settings"]["latency_budget"] = None   # the box is then the slowest model: the whole study's
        trials = pd.read_csv(src / "trials.csv")
        if name.endswith("cpu"):
            meta["settings"]["space"] = {"space": "mobile_former_cpu"}
            lat = [c for c in trials.columns if c.startswith("latency_") and c.endswith("_ms")]
            trials[lat] /= 2   # this space's slowest is not the study's
        trials.to_parquet(run / "trials.parquet")
        (run / "run.json").write_text(json.dumps(meta))
    (study / "run.json").write_text(json.dumps({"study": "latency_front", "kind": "budgets", "searches": names}))
    out, files, headline = analyze_study(study)
    box = re.search(r"area dominated up to \(([\d.]+) ms", (out / "report.md").read_text()).group(1)
    for space in ("mobile_former", "mobile_former_cpu"):
        assert (out / space / "report.md").is_file() and f"\n{space}: " in headline
        assert f"up to ({box} ms, 0 %), the study's" in (out / space / "report.md").read_text()


def test_a_study_trains_side_by_side(tmp_path, capsys):
    """--workers 2: every training in a worker process at the threads given, each row written as
    it finishes (what is left to train is worked out as without workers, and resumes)."""
    path, name = EXP / "ablations.yaml", "ablations"
    args = ["--experiment", str(path), "--out", str(tmp_path), "--workers", "2", "--threads", "1"]
    assert main(args) == 0
    rows = (tmp_path / name / "rows.jsonl").read_text().splitlines()
    jobs = load_study(path, "smoke").jobs()
    assert len(rows) == len(jobs) and "2 workers" in capsys.readouterr().out
    parsed = [json.loads(r) for r in rows]
    assert {r["status"] for r in parsed} == {"complete"} and {r["threads"] for r in parsed} == {1}
    assert len({(r["variant"], r["seed"], r["protocol_name"]) for r in parsed}) == len(jobs)   # each once


def test_time_left_goes_by_the_images_still_to_train():
    """A study's ETA: each protocol's images per run from its finished rows, or scaled from
    another protocol's by epochs x data fraction, at the images per second since this start."""
    from mfsearch.studies.training import TimeLeft
    from mfsearch.studies.variants import StudyData
    from mfsearch.train import ProxyProtocol
    d = StudyData("cifar10", None, [0])
    protocols = {"madds": ProxyProtocol(epochs=0, score="madds"), "default": ProxyProtocol(),
                 "truth": ProxyProtocol(epochs=8, data_fraction=1.0)}
    done = [{"status": "complete", "dataset": "cifar10", "protocol_name": "default", "images_per_s": 500.0,
             "train_time": 100.0}]                                     # 50k images a run
    todo = [(d, "madds", "a", 0), (d, "default", "b", 0), (d, "default", "b", 1), (d, "truth", "a", 0)]
    now = [0.0]
    left = TimeLeft(protocols, done, todo, clock=lambda: now[0])
    assert left.per_run == {("cifar10", "madds"): 0.0, ("cifar10", "default"): 50_000, ("cifar10", "truth"): 400_000}
    assert left.left == 500_000
    now[0] = 1.0          # a score: no images yet to go by, so the time per run so far (1 s) x 3
    assert left.after(todo[0], {"images_per_s": None, "train_time": 0.0}) == ", ETA 0:00:03"
    now[0] = 101.0        # 50k images in 101 s; 450k to go: 909 s, where counting runs would say 101 s
    assert left.after(todo[1], {"images_per_s": 500.0, "train_time": 100.0}) == ", ETA 0:15:09"
    assert left.after(todo[2], {"images_per_s": 500.0, "train_time": 100.0}) == ", ETA 0:06:44"
    assert left.after(todo[3], {"images_per_s": 500.0, "train_time": 800.0}) == ""
    unknown = TimeLeft(protocols, [], [todo[3]] * 3, clock=lambda: now[0])   # no finished row on this data
    now[0] += 10.0
    assert unknown.left is None and unknown.after(todo[3], {"images_per_s": 1.0, "train_time": 1.0}) == ", ETA 0:00:20"


def test_workers_refused_where_a_study_runs_searches(tmp_path, capsys):
    assert main(["--experiment", str(EXP / "budgets.yaml"), "--out", str(tmp_path), "--workers", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "drop --workers" in err and not (tmp_path / "budgets").exists()


def test_a_variant_may_be_a_config_file_relative_to_the_repository(tmp_path, monkeypatch):
    """latency_front_seeds_shapes names its variants by the front points' config files: they
    load from any working directory, and a missing one is a one-line error."""
    monkeypatch.chdir(tmp_path)
    study = load_study(EXP / "latency_front_seeds_shapes.yaml", "full")
    saved = json.loads((EXP.parent / "docs/results/latency_front/shapes/front/mf_200M_mf_cpu_t13.json").read_text())
    assert study.variants["mf_200M_mf_cpu_t13"].to_dict() == saved
    assert study.variants["mnv3_small_130"].family == "mobilenet_v3"
    (tmp_path / "experiments").mkdir()   # a study file's repository is the folder above experiments/
    bad = tmp_path / "experiments" / "bad.yaml"
    bad.write_text("variants: {a: {model: front/nope.json}}\ndataset: synthetic\nsizes: {smoke: {}, full: {}}\n")
    with pytest.raises(UsageError, match="config file .*front/nope.json not found"):
        load_study(bad, "full")


def _state(pid: int) -> tuple[str, int] | None:
    """(state letter, parent pid) of a live process, None once it is gone or a zombie (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in "ZX" else (fields[0], int(fields[1]))


def _children(pid: int) -> set[int]:
    return {int(p.name) for p in Path("/proc").iterdir()
            if p.name.isdigit() and (st := _state(int(p.name))) and st[1] == pid}


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_workers_exit_when_the_study_is_killed():
    """A study killed with SIGKILL (no cleanup runs) leaves no worker training as an orphan:
    each worker watches its parent and exits with it. Without the guard the workers below
    would sleep on for a minute."""
    import signal
    import subprocess
    import sys
    import time
    code = ("import time; from mfsearch.studies.training import side_by_side; "
            "list(side_by_side(time.sleep, [60, 60], 2))")
    parent = subprocess.Popen([sys.executable, "-c", code])
    kids: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while len(kids) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
            kids = _children(parent.pid)
        assert len(kids) >= 2, "the workers never started"
        time.sleep(1.0)   # past their initializer, into the sleep
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 15
        while (alive := [k for k in kids if _state(k)]) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert alive == [], f"workers {alive} outlived their study"
    finally:
        for k in kids:
            if _state(k):
                os.kill(k, signal.SIGKILL)


def test_a_study_trains_on_the_device_asked_for(tmp_path, monkeypatch):
    """--device reaches a study's trainings and searches, a study is not resumed on another kind
    of device than its rows trained on, and a CPU-only kind refuses a GPU. CUDA is stood in
    for: the device is checked where it arrives, and the trainings themselves run on the CPU."""
    from mfsearch.studies import budgets, registry, training
    monkeypatch.setattr(registry, "resolve_device", lambda device: device)
    monkeypatch.setattr(training, "device_name", lambda device: device)
    asked, real = [], training.train_proxy

    def on_the_cpu(*args, device="cpu", **kwargs):
        asked.append(device)
        return real(*args, device="cpu", **kwargs)

    monkeypatch.setattr(training, "train_proxy", on_the_cpu)
    tokens = load_study(EXP / "tokens.yaml", "smoke")
    run_study(tokens, out=tmp_path, device="cuda:0", log=lambda _: None)
    assert asked == ["cuda:0"] * len(tokens.jobs())
    assert json.loads((tmp_path / "tokens" / "run.json").read_text())["device"] == "cuda:0"
    with pytest.raises(UsageError, match="trained on cpu; resume it with --device cpu"):  # its rows say cpu
        run_study(tokens, out=tmp_path, device="cuda:0", log=lambda _: None)
    run_study(tokens, out=tmp_path, device="cpu", log=lambda _: None)   # resumes: nothing left to train
    assert len(asked) == len(tokens.jobs())

    searched = []
    monkeypatch.setattr(budgets, "run_search", lambda settings: searched.append(settings.device))
    grid = load_study(EXP / "budgets.yaml", "smoke")
    run_study(grid, out=tmp_path, device="cuda:0", log=lambda _: None)
    assert searched and set(searched) == {"cuda:0"}
    with pytest.raises(UsageError, match="CPU only"):
        run_study(load_study(EXP / "detection.yaml", "smoke"), out=tmp_path / "det", device="cuda")
    assert not (tmp_path / "det").exists()
