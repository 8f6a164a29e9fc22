"""Where the time goes (mfsearch.profile): every part named is a known one, the parts add up
to the profile's total, the MAdds shares are the closed form's, the clock and the trace
parser attribute exactly, and `mfsearch latency --profile` refuses bad input in one line."""
import json

import pytest
import torch

import mfsearch
from mfsearch import profile as profile_mod
from mfsearch.cli import main
from mfsearch.cli import profile as profile_cli
from mfsearch.flops import estimate_parts
from mfsearch.latency import Timing
from mfsearch.models.mobile_former import MobileFormerBlock, dynamic_relu
from mfsearch.models.parts import PARTS, module_parts
from mfsearch.profile import profile_latency, with_measured

TINY, RES = "mobile_former_26m", 64   # 2.2M MAdds at 64 px: every part present, seconds to profile
FAST = Timing(warmup=1, min_runs=5, min_seconds=0.0, max_runs=5)
MOBILE_FORMER_PARTS = ("stem_head", "mobile", "dyrelu", "mobile_to_former", "former", "former_to_mobile")
# The parts and the total are means over the same runs (the middle half by total), the total
# counted apart from the parts: ONNX Runtime's every kernel in the run, mapped or not; torch's
# wall time of the forward, which also holds the call into the model and setting the threads
# outside the hooks (microseconds against milliseconds). 10% leaves room for that at 64 px
# and still catches time counted twice (a part also counted inside its parent adds 30% or
# more) or dropped (each Mobile-Former part is 1-60% of the time).
SUM_TOLERANCE = 0.10


@pytest.fixture(scope="module", params=["onnxruntime", "torch"])
def tiny_profile(request):
    return profile_latency(TINY, request.param, resolution=RES, runs=15, warmup=3, timing=FAST, cache=False)


def test_parts_are_known_and_sum_to_the_profile_total(tiny_profile):
    r = tiny_profile
    assert set(r.parts_ms) == set(PARTS) and set(r.share) == set(PARTS) and set(r.madds_share) == set(PARTS)
    assert all(v >= 0 for v in r.parts_ms.values())
    assert sum(r.parts_ms.values()) == pytest.approx(r.profile_total_ms, rel=SUM_TOLERANCE)
    assert sum(r.share.values()) == pytest.approx(1.0)
    assert all(r.parts_ms[p] > 0 for p in MOBILE_FORMER_PARTS), r.parts_ms
    assert r.parts_ms["se"] == 0
    # what no rule claims (the root's token expansion, kernels not traced back to a module)
    assert r.share["other"] < 0.05, r.share
    assert r.runs == 15 and r.resolution == RES and r.profile_wall_ms >= r.profile_total_ms * 0.9


def test_measured_total_is_split_in_the_profile_proportions(tiny_profile):
    r = tiny_profile
    assert r.measured_ms > 0 and sum(r.split_ms.values()) == pytest.approx(r.measured_ms, rel=1e-3)
    assert r.split_ms["mobile"] == pytest.approx(r.share["mobile"] * r.measured_ms, abs=1e-3)


def test_madds_shares_are_the_closed_form(tiny_profile):
    r = tiny_profile
    parts = estimate_parts(TINY, RES)
    assert r.madds == sum(parts.values()) == mfsearch.estimate_flops(TINY, RES)
    assert sum(r.madds_share.values()) == pytest.approx(1.0)
    assert r.madds_share == {p: v / r.madds for p, v in parts.items()}


@pytest.mark.parametrize("runtime", ["onnxruntime", "torch"])
def test_mobilenet_v3_profiles_into_its_own_parts(runtime):
    r = profile_latency("mobilenet_v3_small_050", runtime, batch=2, resolution=RES, runs=5, warmup=2, measure=False)
    timed = {p for p, v in r.parts_ms.items() if v > 0}
    assert {"stem_head", "mobile", "se"} <= timed <= {"stem_head", "mobile", "se", "other"}, r.parts_ms
    assert r.measured_ms is None and r.split_ms == {} and r.batch == 2
    assert r.madds_share["se"] > 0 and r.madds_share["dyrelu"] == 0


def test_module_parts_of_a_mobile_former():
    model = mfsearch.create_model(TINY)
    parts = module_parts(model)
    assert parts[""] == "other" and parts["stem.0"] == "stem_head" and parts["head.classifier"] == "stem_head"
    assert parts["blocks.1.conv1.0"] == "mobile" and parts["blocks.1.coeffs.first"] == "dyrelu"
    assert parts["blocks.1.dyrelu"] == "dyrelu" and parts["final_m2f.proj"] == "mobile_to_former"
    assert parts["blocks.1.former.ffn.0"] == "former" and parts["blocks.1.f2m.kv"] == "former_to_mobile"
    assert set(parts.values()) <= set(PARTS)


def test_onnxruntime_graph_maps_every_conv_to_its_module(tmp_path):
    """ONNX Runtime rewrites convs into its blocked layout, renames them and may fold the
    next activation in (the old dynamic ReLU's Relu): every conv and layout copy must still
    land in stem_head or mobile, and only the root's own few nodes stay without a module."""
    import onnx
    import onnxruntime as ort

    from mfsearch.export import export_onnx
    from mfsearch.latency import OnnxRuntimeRuntime

    model = mfsearch.create_model(TINY).eval()
    parts = module_parts(model)
    path = export_onnx(model, tmp_path / "m.onnx", resolution=RES, dynamic_batch=False, check=False,
                       scope_names=True)
    opts = OnnxRuntimeRuntime.options(1)
    opts.optimized_model_filepath = str(tmp_path / "opt.onnx")
    ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    optimised = onnx.load(opts.optimized_model_filepath)
    scopes = profile_mod._graph_scopes(onnx.load(str(path)), optimised, parts)
    placed = {n.name: (n.op_type, profile_mod.part_of_path(scopes[n.name], parts)) for n in optimised.graph.node}
    convs = {name: part for name, (op, part) in placed.items() if "Conv" in op or op.startswith("Reorder")}
    assert len(convs) > 40 and set(convs.values()) <= {"stem_head", "mobile", "dyrelu"}, convs
    assert all(part in ("stem_head", "mobile") for name, part in convs.items()
               if placed[name][0] != "ReorderOutput"), convs   # a copy out may serve an activation
    unplaced = [n for n in placed if not scopes[n]]   # the root's own: expanding the tokens
    assert len(unplaced) <= 3 and all(n.startswith("/") for n in unplaced), unplaced


def test_part_clock_charges_each_part_its_own_time(monkeypatch):
    """A fake clock that ticks once per reading: every interval between two hook events is
    1 ms, charged to the innermost part open at the time, never to its parents as well."""
    ticks = iter(range(10_000))
    monkeypatch.setattr(profile_mod, "perf_counter", lambda: next(ticks) / 1000)

    class Inner(torch.nn.Module):
        def forward(self, x):
            return x + 1

    class Outer(torch.nn.Module):   # a MobileFormerBlock-like parent around a dynamic-ReLU child
        def __init__(self):
            super().__init__()
            self.a, self.b = Inner(), Inner()

        def forward(self, x):
            return self.b(self.a(x))

    model = Outer()
    monkeypatch.setattr(profile_mod, "module_parts", lambda m: {"": "mobile", "a": "dyrelu", "b": "mobile"})
    clock = profile_mod._PartClock(model)
    model(torch.zeros(1))
    spent = clock.take()
    clock.remove()
    # readings: enter root, enter a, leave a, leave root (b is mobile like its parent: no hook)
    assert spent == {"mobile": pytest.approx(2.0), "dyrelu": pytest.approx(1.0)}
    assert not model._forward_hooks and not model.a._forward_pre_hooks


def test_trace_parser_drops_warmup_and_places_unknown_kernels_by_order():
    def run(ts, dur):
        return {"cat": "Session", "name": "model_run", "ts": ts, "dur": dur}

    def kernel(name, ts, dur):
        return {"cat": "Node", "name": f"{name}_kernel_time", "ts": ts, "dur": dur}

    events = [run(0, 100), kernel("a", 10, 50),                                   # warm-up, dropped
              run(200, 100), kernel("new", 205, 5), kernel("a", 210, 30), kernel("b", 250, 20), kernel("new", 280, 10),
              {"cat": "Node", "name": "a_fence_before", "ts": 209, "dur": 1},   # not a kernel
              run(400, 100), kernel("a", 410, 40), kernel("b", 460, 30)]
    runs = profile_mod._runs_from_trace(events, {"a": "mobile", "b": "former"}, warmup=1)
    assert runs.walls == [0.1, 0.1] and runs.totals == pytest.approx([0.065, 0.07])
    # "new" is in no graph: first in its run it is other, after b it is b's part
    assert runs.parts[0] == pytest.approx({"other": 0.005, "mobile": 0.03, "former": 0.03})
    assert runs.parts[1] == pytest.approx({"mobile": 0.04, "former": 0.03})


def test_a_typical_run_adds_up_and_drops_the_slowed_runs():
    runs = profile_mod.Runs([{"mobile": 1.0, "former": 1.0}] * 6 + [{"mobile": 9.0, "former": 1.0},
                                                                   {"mobile": 1.0, "former": 9.0}],
                            [2.0] * 6 + [10.0, 10.0], [3.0] * 8)
    parts, total = runs.typical()
    assert parts["mobile"] == parts["former"] == 1.0 and total == 2.0 == sum(parts.values())


def test_dynamic_relu_module_computes_what_the_function_did():
    """The block now calls a parameter-free DynamicReLU module (so its ops carry a module path)
    and CoeffMLPs reads the first token itself: outputs and state_dict keys are unchanged."""
    torch.manual_seed(0)
    model = mfsearch.create_model(TINY, num_classes=10).eval()
    block = next(b for b in model.blocks if isinstance(b, MobileFormerBlock) and b.kind == "block")
    assert not any("dyrelu" in k for k in model.state_dict())
    cfg = model.config
    x, z = torch.randn(2, block.conv1[0].in_channels, 16, 16), torch.randn(2, cfg.tokens, cfg.token_dim)
    with torch.no_grad():
        z2 = block.former(block.m2f(x, z))
        hidden = torch.relu(block.coeffs.first(z2[:, 0])).split(block.coeffs.squeeze, dim=-1)
        coeffs = [torch.nn.functional.hardsigmoid(lin(h)) for lin, h in zip(block.coeffs.second, hidden)]
        out = dynamic_relu(block.conv1(x), coeffs[0])
        out = block.conv3(dynamic_relu(block.conv2(out), coeffs[1]))
        want = block.f2m(out + x if block.residual else out, z2)
        got, _ = block(x, z)
    assert (got - want).abs().max() <= 1e-5


def _record(model, runtime, share):
    parts = {p: share.get(p, 0.0) for p in PARTS}
    return with_measured(profile_mod.ProfileRecord(model, runtime, {p: 2 * v for p, v in parts.items()}, parts,
                                                   parts, 1_000_000, 2.0, 3.0, None), 1.0)


def test_profile_command_prints_writes_and_rereads(tmp_path, monkeypatch, capsys):
    fake = [_record(m, rt, {"mobile": 0.7, "dyrelu": 0.2, "other": 0.1}) for rt in ("onnxruntime", "torch")
            for m in ("mobile_former_26m", "mobile_former_52m")]
    seen = {}
    monkeypatch.setattr(profile_cli, "profile_table", lambda models, *a, **k: seen.setdefault("m", models) and fake)
    out = tmp_path / "p.json"
    assert main(["latency", "--profile", "--json", str(out)]) == 0
    assert seen["m"] == mfsearch.list_models("mobile_former") and len(seen["m"]) == 7   # the default: 7 presets
    text = capsys.readouterr().out
    assert "dyrelu" in text and "70.0%" in text and "= measured" in text and "former_to_mobile" not in text
    assert len(json.loads(out.read_text())) == 4
    assert main(["latency", "--profile", "--from-json", str(out)]) == 0
    assert capsys.readouterr().out.count("mobile_former_52m") == 1


@pytest.mark.parametrize("args,msg", [
    (["--models", "no_such_model"], "no_such_model"),
    (["--runtimes", "tensorrt"], "unknown latency runtime"),
    (["--runs", "0"], "at least 1"),
    (["--plot", "x.png"], "--plot"),
])
def test_profile_command_refuses_bad_input_in_one_line(args, msg, capsys, monkeypatch):
    monkeypatch.setattr(profile_cli, "profile_table", lambda *a, **k: pytest.fail("measured despite bad input"))
    assert main(["latency", "--profile", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and msg in err, err
