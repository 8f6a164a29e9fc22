"""ONNX export (checked against PyTorch in ONNX Runtime), latency records and their cache,
and the latency budget in the search."""
import json
import random
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
import torch
from conftest import mixed_config, random_mobile_former_config

import mfsearch
from mfsearch import latency as latency_mod
from mfsearch.cli import main as mfsearch_main
from mfsearch.cli.search import main
from mfsearch.export import TOLERANCE, export_onnx
from mfsearch.latency import Timing, compare_latency, measure_latency, parse_latency
from mfsearch.search import baselines as baselines_mod

SPACE = Path(__file__).resolve().parent / "data" / "tiny_space.yaml"
FAST = Timing(warmup=1, min_runs=3, min_seconds=0.0, max_runs=3)


@pytest.fixture(autouse=True)
def isolated_caches(tmp_path, monkeypatch):
    monkeypatch.setattr(latency_mod, "CACHE_DIR", tmp_path / "latency-cache")
    monkeypatch.setattr(baselines_mod, "CACHE_DIR", tmp_path / "baseline-cache")


def _ort_max_diff(path, model, batch=3, res=64):
    x = torch.randn(batch, 3, res, res)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        return float(np.abs(got - model.eval()(x).numpy()).max())


# A Mobile-Former export costs ~15 s whatever its size, so one is checked against ONNX Runtime:
# the test below's MF-26M with every row option, whose last four rows are the published block
# (dynamic ReLU, both bridges, the Former on all tokens) and so hold every preset's modules.
@pytest.mark.parametrize("name", ["mobilenet_v3_small_050", "mobilenet_v3_large_100"])
def test_export_matches_pytorch_in_onnxruntime_at_any_batch(tmp_path, name):
    model = mfsearch.create_model(name)
    path = export_onnx(model, tmp_path / f"{name}.onnx", resolution=64)   # checked inside at batch 2
    assert _ort_max_diff(path, model, batch=3) <= TOLERANCE                # and the batch stays free


def test_random_configs_and_ablations_export(tmp_path):
    rng = random.Random(1)
    cfgs = [random_mobile_former_config(rng)]
    # every ablation switch off at least once, two at a time (each export costs seconds)
    cfgs += [mfsearch.get_config("mobile_former_26m", **dict.fromkeys(off, False)) for off in
             (("mobile_to_former", "dynamic_relu"), ("former_to_mobile", "former_ffn"), ("former",))]
    for i, cfg in enumerate(cfgs):
        model = mfsearch.create_model(cfg, num_classes=10)
        path = export_onnx(model, tmp_path / f"m{i}.onnx", resolution=64, dynamic_batch=False)
        assert path.stat().st_size > 10_000


def test_row_options_and_head_expansion_export(tmp_path):
    """Every new dimension at once (conftest.MIXED_ROWS): the token slices and the concatenation
    of the passed-through tokens export, and ONNX Runtime agrees at another batch size."""
    model = mfsearch.create_model(mixed_config(), num_classes=10)
    path = export_onnx(model, tmp_path / "mixed.onnx", resolution=64)
    assert _ort_max_diff(path, model, batch=3) <= TOLERANCE


def test_export_cli_exports_a_checkpoint_and_refuses_bad_input(tmp_path, capsys):
    from mfsearch.models.checkpoint import save_checkpoint
    model = mfsearch.create_model(mixed_config(), num_classes=10)   # any model: what is tested is the CLI
    ckpt = save_checkpoint(tmp_path / "best.pt", model.config, 10, model.state_dict())
    assert mfsearch_main(["export", str(ckpt), "--out", str(tmp_path / "x.onnx"), "--resolution", "64"]) == 0
    assert "trained weights" in capsys.readouterr().out and (tmp_path / "x.onnx").is_file()
    for args, msg in ((["no_such_model"], "cannot export"), ([str(tmp_path / "missing.pt")], "no checkpoint"),
                      ([str(tmp_path)], "neither best.pt nor best.json")):
        (tmp_path / "best.pt").unlink(missing_ok=True)
        assert mfsearch_main(["export", *args]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and msg in err, (args, err)


def test_latency_record_and_cache(monkeypatch):
    calls = []
    real = latency_mod._interleaved
    monkeypatch.setattr(latency_mod, "_interleaved", lambda fns, timing: calls.append(len(fns)) or real(fns, timing))
    rec = measure_latency("mobilenet_v3_small_050", "torch", threads=1, resolution=64, timing=FAST)
    assert rec.runs == 3 and rec.p10_ms <= rec.median_ms <= rec.p90_ms and rec.median_ms > 0
    assert rec.runtime == "torch" and rec.batch == 1 and rec.threads == 1 and rec.resolution == 64
    assert "torch" in rec.versions and rec.host
    again = measure_latency("mobilenet_v3_small_050", "torch", threads=1, resolution=64, timing=FAST)
    assert again == rec and calls == [1]              # the second came from the cache, not the clock
    measure_latency("mobilenet_v3_small_050", "torch", threads=2, resolution=64, timing=FAST)
    assert calls == [1, 1]                            # another thread count is another key
    both = compare_latency(["mobilenet_v3_small_050", "mobile_former_26m"], "torch", resolution=64, timing=FAST)
    assert [r.model for r in both] == ["mobilenet_v3_small_050", "mobile_former_26m"] and calls == [1, 1, 1]


def test_onnxruntime_latency(monkeypatch):
    rec = measure_latency("mobilenet_v3_small_050", "onnxruntime", resolution=64, timing=FAST, cache=False)
    assert rec.runtime == "onnxruntime" and "onnxruntime" in rec.versions and rec.median_ms > 0
    rec = measure_latency("mobilenet_v3_small_050", "onnxruntime", batch=2, resolution=64, timing=FAST, cache=False)
    assert rec.batch == 2 and rec.median_ms > 0     # the export was fixed at batch 1 and refused 2


@pytest.mark.parametrize("text,ms", [("12ms", 12.0), ("12", 12.0), ("0.012s", 12.0), ("1.5 ms", 1.5)])
def test_latency_budget_formats(text, ms):
    assert parse_latency(text) == pytest.approx(ms)


TINY = ["--epochs", "1", "--data-fraction", "0.02", "--test-fraction", "0.05", "--batch-size", "64",
        "--min-steps", "0", "--band", "0", "--threads", "2", "--confirm-top", "0", "--latency-runtime", "torch"]


def test_a_latency_front_search_records_proposals_over_the_madds_budget(tmp_path):
    """--cost latency: a proposal over the MAdds budget is never timed, so it has no latency; the
    search records it as infeasible and goes on (it once stopped on the missing value)."""
    code = main(["--out", str(tmp_path / "runs"), *TINY, "--budget", "3M", "--trials", "4", "--name", "over",
                 "--space", str(SPACE), "--objective", "pareto", "--cost", "latency", "--no-baselines"])
    assert code == 0
    df = pd.read_parquet(tmp_path / "runs" / "over" / "trials.parquet")
    over = df[df["status"] == "infeasible"]
    assert len(df) == 4 and not over.empty and over["latency_ms"].isna().all()
    assert df.loc[df["status"] == "complete", "latency_ms"].notna().all()


def test_a_proposal_over_the_latency_budget_is_recorded_and_never_trained(tmp_path, monkeypatch):
    from mfsearch.search import evaluate as evaluate_mod
    monkeypatch.setattr(evaluate_mod, "measure_latency",
                        lambda cfg, runtime, batch, threads: measure_latency(cfg, runtime, batch, threads, timing=FAST))
    trained = []
    real = evaluate_mod.train_proxy
    monkeypatch.setattr(evaluate_mod, "train_proxy", lambda *a, **k: trained.append(1) or real(*a, **k))
    code = main(["--out", str(tmp_path / "runs"), *TINY, "--budget", "20M", "--trials", "3", "--name", "lat",
                 "--space", str(SPACE), "--latency-budget", "0.001ms"])
    assert code == 0
    df = pd.read_parquet(tmp_path / "runs" / "lat" / "trials.parquet")
    assert (df["status"] == "infeasible").all() and not trained
    measured = df[df["latency_ms"].notna()]
    assert not measured.empty and measured["error"].str.contains("latency budget").all()
    run = json.loads((tmp_path / "runs" / "lat" / "run.json").read_text())
    assert run["settings"]["latency_budget"] == pytest.approx(0.001)


@pytest.mark.parametrize("args,msg", [
    (["--latency-budget", "fast"], "not a positive latency"),
    (["--latency-budget=-5ms"], "not a positive latency"),
    (["--latency-runtime", "tensorrt"], "unknown --latency-runtime"),
    (["--cost", "latency"], "add --objective pareto"),
    (["--latency-threads", "0"], "--latency-threads"),
])
def test_bad_latency_flags_give_one_line_and_exit_2(tmp_path, capsys, args, msg):
    assert main(["--budget", "150M", "--out", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and msg in err, err
    assert not any(tmp_path.iterdir())


def test_latency_table_writes_json_and_redraws_from_it(tmp_path, capsys):
    records, figure = tmp_path / "latency.json", tmp_path / "latency.png"
    small = tmp_path / "front_point.json"   # a config file, as a search records its front points
    small.write_text(mfsearch.get_config("mobilenet_v3_small_050").to_json())
    assert mfsearch_main(["latency", "--models", str(small), "mobile_former_26m", "--runtimes", "torch",
                             "--repeats", "2", "--min-seconds", "0", "--json", str(records)]) == 0
    measured = capsys.readouterr().out
    data = json.loads(records.read_text())
    assert [r["model"] for r in data] == [str(small), "mobile_former_26m"]
    assert all(len(r["torch"]) == 2 and r["torch"][0]["runs"] >= 30 for r in data)   # two passes, timed in bursts
    assert mfsearch_main(["latency", "--from-json", str(records), "--plot", str(figure)]) == 0
    redrawn = capsys.readouterr().out
    assert measured.splitlines()[-2:] == redrawn.splitlines()[-2:]   # the same rows, nothing measured again
    assert figure.stat().st_size > 10_000
    (tmp_path / "bad.json").write_text("[]")
    assert mfsearch_main(["latency", "--from-json", str(tmp_path / "bad.json")]) == 2
    assert "not a latency file" in capsys.readouterr().err


def test_the_latency_front_table_says_what_each_mobile_former_kept():
    from types import SimpleNamespace

    from mfsearch.analysis.latency import global_part, latency_lines
    from mfsearch.analysis.params import has_params_axis
    mixed = mixed_config()   # 8 non-lite rows: two without dynamic ReLU, two without bridges, 1-3 tokens
    assert global_part(mixed.to_json()) == "dyReLU 6/8, bridges 6/8 on 1/2/3 tokens, head x4"
    assert global_part(mfsearch.get_config("mobile_former_151m", former=False).to_dict()) == \
        "dyReLU 0/11, bridges 0/11, head x6"
    assert global_part(mfsearch.get_config("mobilenet_v3_large_100").to_json()) == ""
    row = dict(trial_id=0, run="50M-cpu", flops=20e6, latency_ms=2.0, latency_p10_ms=1.9, latency_p90_ms=2.2,
               final_top1=40.0, status="complete", config=mixed.to_json())
    # fronts by hand: Mobile-Former (2.0 ms, 40 %), (3.0 ms, 50 %); MobileNetV3 (1.0, 30), (2.5, 45)
    trials = pd.DataFrame([row, {**row, "trial_id": 1, "latency_ms": 3.0, "final_top1": 50.0}])
    small = mfsearch.get_config("mobilenet_v3_small_050").to_json()
    base = pd.DataFrame([{**row, "trial_id": "small", "latency_ms": 1.0, "final_top1": 30.0, "config": small},
                         {**row, "trial_id": "large", "latency_ms": 2.5, "final_top1": 45.0, "config": small}])
    text = "\n".join(latency_lines(SimpleNamespace(trials=trials, baselines=base, runs=[])))
    assert "| dyReLU 6/8, bridges 6/8 on 1/2/3 tokens, head x4 |" in text and "| small |" in text
    assert "up to (3.00 ms, 0 %), the slowest complete model measured" in text   # no latency budget
    # areas up to 3.0 ms: (3-2)*40 + 0*50 = 40; (2.5-1)*30 + (3-2.5)*45 = 67.5
    assert "| Mobile-Former | 40.0 | 2 |" in text and "| MobileNetV3 | 67.5 | 2 |" in text
    # at equal top-1 (Mobile-Former minus MobileNetV3): 40 % is reached by MobileNetV3 at 2.5 ms (-0.50),
    # 50 % never; 30 % by Mobile-Former at 2.0 ms (+1.00), 45 % at 3.0 ms (+0.50)
    assert "| 50M-cpu / 0 | 20.0 | 2.00 | 1.90-2.20 | 40.00 | 2.50 | -0.50 |" in text
    assert "| 50.00 | never | n/a |" in text
    assert "| small | 20.0 | 1.00 | 1.90-2.20 | 30.00 | 2.00 | +1.00 |" in text
    assert "| large | 20.0 | 2.50 | 1.90-2.20 | 45.00 | 3.00 | +0.50 |" in text
    alone = "\n".join(latency_lines(SimpleNamespace(trials=trials, baselines=base.iloc[:0], runs=[])))
    assert "| 40.00 | no front | n/a |" in alone and "| MobileNetV3 |" not in alone
    # a latency study reports its params front too
    assert [has_params_axis(SimpleNamespace(runs=[SimpleNamespace(cost=c, param_budget=None)]))
            for c in ("latency", "flops")] == [True, False]
