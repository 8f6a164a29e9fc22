"""Every study file loads at both sizes and its smoke size runs end to end."""
from pathlib import Path

import pandas as pd
import pytest

import mfsearch
from mfsearch.experiments import load_study
from mfsearch.search.cli import main
from mfsearch.search.errors import UsageError

import importlib.util
_spec = importlib.util.spec_from_file_location("analyze_cli", Path(__file__).resolve().parents[1] / "analyze.py")
_analyze = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_analyze)
analyze_main = _analyze.main

STUDIES = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "experiments").glob("*.yaml"))
EXP = Path(__file__).resolve().parents[1] / "experiments"


def test_the_studies_provided():
    assert {"paper_presets", "tokens", "token_dim", "width_depth_resolution", "ablations",
            "proxy_fidelity"} <= set(STUDIES)


@pytest.mark.parametrize("name", STUDIES)
def test_full_size_loads(name):
    study = load_study(EXP / f"{name}.yaml", "full")
    assert study.dataset == "cifar10" and len(study.variants) >= 4
    if study.budget:
        for cfg in study.variants.values():
            assert 0.9 * study.budget <= mfsearch.estimate_flops(cfg) <= study.budget


@pytest.mark.parametrize("name", STUDIES)
def test_smoke_size_runs_and_resumes(tmp_path, name, capsys):
    assert main(["--experiment", str(EXP / f"{name}.yaml"), "--out", str(tmp_path)]) == 0
    df = pd.read_parquet(tmp_path / name / "trials.parquet")
    study = load_study(EXP / f"{name}.yaml", "smoke")
    assert len(df) == len(study.variants) * len(study.seeds) * len(study.protocols)
    assert set(df["status"]) <= {"complete", "failed"} and {"variant", "protocol_name"} <= set(df.columns)
    capsys.readouterr()
    assert main(["--experiment", str(EXP / f"{name}.yaml"), "--out", str(tmp_path)]) == 0
    assert f"{len(df)} of {len(df)} already done" in capsys.readouterr().out
    if (df["status"] == "complete").any():
        assert analyze_main([str(tmp_path / name)]) == 0
        report = (tmp_path / name / "analysis" / "report.md").read_text()
        assert (tmp_path / name / "analysis" / "study.png").stat().st_size > 10_000
        for variant in study.variants:
            assert variant in report
        if len(study.protocols) == 2:
            assert "Kendall tau" in report and "Spearman rho" in report


def test_bad_study_files(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("study: x\nbase: mobile_former_26m\nvariants: {a: {tokens: 0}}\nsizes: {smoke: {}}\n")
    with pytest.raises(UsageError, match="tokens"):
        load_study(bad, "smoke")
    with pytest.raises(UsageError, match="no size"):
        load_study(EXP / "tokens.yaml", "huge")
    with pytest.raises(UsageError, match="not found"):
        load_study(tmp_path / "missing.yaml")
