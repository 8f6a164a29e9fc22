"""FLOP and parameter counts of the presets and the MobileNetV3 family, and the closed form."""
import random

import pytest
from conftest import mixed_config, random_mobile_former_config, with_row_options

import mfsearch
from mfsearch.flops import estimate_parts
from mfsearch.models import MOBILENET_V3_PUBLISHED, preset_table

# the authors' public implementation counted with fvcore (FLOPs M, params M)
AUTHORS = {"mobile_former_26m": (26.0, 3.23), "mobile_former_52m": (51.8, 3.47),
           "mobile_former_96m": (96.3, 4.59), "mobile_former_151m": (152.0, 7.60),
           "mobile_former_214m": (215.3, 9.43), "mobile_former_294m": (295.4, 11.42),
           "mobile_former_508m": (510.6, 13.98)}


@pytest.fixture(scope="module")
def preset_reports():
    return {n: mfsearch.count_flops(n) for n in mfsearch.list_models("mobile_former")}


def test_seven_presets_registered():
    assert mfsearch.list_models("mobile_former") == list(AUTHORS)


@pytest.mark.parametrize("name", list(AUTHORS))
def test_preset_matches_published(name, preset_reports):
    pub = preset_table()[name]
    r = preset_reports[name]
    flops_m, params_m = r.flops / 1e6, r.params / 1e6
    assert abs(flops_m - pub["flops_M"]) <= max(0.01 * pub["flops_M"], 0.5)
    assert abs(params_m - pub["params_M"]) <= max(0.01 * pub["params_M"], 0.05)
    # and the authors' own module counted the same way
    assert flops_m == pytest.approx(AUTHORS[name][0], abs=0.05)
    assert params_m == pytest.approx(AUTHORS[name][1], abs=0.005)


@pytest.mark.parametrize("name", list(AUTHORS))
def test_former_and_bridge_under_a_fifth(name, preset_reports):
    r = preset_reports[name]
    assert sum(r.breakdown.values()) == r.flops
    assert 0 < r.share("former") + r.share("bridge") < 0.20
    assert r.share("mobile") > 0.5


@pytest.mark.parametrize("name", sorted(MOBILENET_V3_PUBLISHED))
def test_mobilenet_v3_matches_published_without_bn(name):
    r = mfsearch.count_flops(name)
    published = MOBILENET_V3_PUBLISHED[name]["flops_M"] * 1e6
    assert abs(r.flops_without_bn - published) / published < 0.03
    # the shared convention includes BatchNorm, which adds a few percent
    assert 1.02 < r.flops / r.flops_without_bn < 1.07
    parts = estimate_parts(name)   # traced by module: the parts sum to the total, SE is its own
    assert sum(parts.values()) == r.flops == mfsearch.estimate_flops(name)
    assert parts["se"] > 0 and parts["mobile"] > parts["stem_head"] > 0 and parts["dyrelu"] == parts["former"] == 0


def test_mobilenet_v3_family_builds_and_orders():
    flops = {n: mfsearch.count_flops(n).flops for n in mfsearch.list_models("mobilenet_v3")}
    assert flops["mobilenet_v3_large_050"] < flops["mobilenet_v3_large_075"] \
        < flops["mobilenet_v3_large_100"] < flops["mobilenet_v3_large_125"]
    assert flops["mobilenet_v3_small_050"] < flops["mobilenet_v3_small_075"] < flops["mobilenet_v3_small_100"]


@pytest.mark.parametrize("name", list(AUTHORS))
def test_estimate_equals_fvcore_on_presets(name, preset_reports):
    est = mfsearch.estimate_flops(name, breakdown=True)
    assert est["total"] == preset_reports[name].flops
    for part, value in preset_reports[name].breakdown.items():
        assert est[part] == value
    fine = estimate_parts(name)
    assert fine == preset_reports[name].parts and sum(fine.values()) == est["total"]
    assert all(fine[p] > 0 for p in ("stem_head", "mobile", "dyrelu", "mobile_to_former", "former",
                                     "former_to_mobile"))


def test_estimate_equals_fvcore_on_random_configs():
    """Exactly fvcore's count, part by part, over configs that vary every field the closed
    form reads: widths, depth, resolution, tokens, heads, FFN expansion, groups, switches."""
    rng = random.Random(0)
    seen = set()
    for _ in range(50):   # every value checked below is drawn by the 20th config of this stream
        cfg = random_mobile_former_config(rng)
        traced = mfsearch.count_flops(cfg)
        est = mfsearch.estimate_flops(cfg, breakdown=True)
        assert est["total"] == traced.flops, cfg.to_json()
        assert {p: est[p] for p in traced.breakdown} == traced.breakdown, cfg.to_json()
        assert estimate_parts(cfg) == traced.parts, cfg.to_json()    # the fine split too, part by part
        seen |= {("group_num", cfg.group_num), ("bridge_heads", cfg.bridge_heads),
                 ("former_heads", cfg.former_heads), ("ffn_expansion", cfg.ffn_expansion)}
        seen |= {(s, getattr(cfg, s)) for s in ("mobile_to_former", "former_to_mobile", "dynamic_relu",
                                                "former_ffn", "former")}
    for field, values in [("group_num", (1, 2, 4)), ("bridge_heads", (1, 2, 4)), ("former_heads", (1, 2, 4)),
                          ("ffn_expansion", (1, 2, 4))]:
        assert {(field, v) for v in values} <= seen, field
    for switch in ("mobile_to_former", "former_to_mobile", "dynamic_relu", "former_ffn", "former"):
        assert {(switch, True), (switch, False)} <= seen, switch


def _rows(name: str, **options) -> tuple:
    """A preset's rows with `options` on every non-lite row."""
    return tuple([*b.to_row(), options] if b.kind != "lite" else b.to_row()
                 for b in mfsearch.preset_config(name).blocks)


ROW_OPTION_CASES = {
    "static": lambda: mfsearch.get_config("mobile_former_151m", blocks=_rows("mobile_former_151m", dynamic_relu=False)),
    "no_bridges": lambda: mfsearch.get_config("mobile_former_52m", blocks=_rows("mobile_former_52m", bridges=False)),
    "one_token": lambda: mfsearch.get_config("mobile_former_96m", blocks=_rows("mobile_former_96m", tokens=1)),
    "head_expansion_2": lambda: mfsearch.get_config("mobile_former_26m", head_expansion=2),
    "head_expansion_3": lambda: mfsearch.get_config("mobile_former_294m", head_expansion=3, group_num=4),
    "mixed": mixed_config,
    "mixed_no_m2f": lambda: mixed_config(mobile_to_former=False, former_ffn=False),
}


@pytest.mark.parametrize("case", list(ROW_OPTION_CASES))
def test_estimate_equals_fvcore_with_row_options_and_head_expansion(case):
    """Each new dimension alone and all together: a plain-ReLU stage, stages without bridges,
    stages on fewer tokens, a narrower head, and a mix with the ablation switches."""
    cfg = ROW_OPTION_CASES[case]()
    traced = mfsearch.count_flops(cfg, resolution=96)
    est = mfsearch.estimate_flops(cfg, 96, breakdown=True)
    assert est["total"] == traced.flops and {p: est[p] for p in traced.breakdown} == traced.breakdown
    assert mfsearch.estimate_params(cfg) == traced.params
    assert mfsearch.estimate_flops(cfg) < mfsearch.estimate_flops(cfg.replace(
        blocks=tuple(b.to_row()[:6] for b in cfg.blocks), head_expansion=6))   # each trades MAdds away


def test_estimate_equals_fvcore_on_random_configs_with_row_options():
    rng = random.Random(5)
    seen = set()
    for _ in range(12):
        cfg = with_row_options(random_mobile_former_config(rng), rng)
        traced = mfsearch.count_flops(cfg, resolution=64)   # the trace's cost grows with the size
        est = mfsearch.estimate_flops(cfg, 64, breakdown=True)
        assert est["total"] == traced.flops, cfg.to_json()
        assert {p: est[p] for p in traced.breakdown} == traced.breakdown, cfg.to_json()
        seen |= {k for b in cfg.blocks for k in b.options()}
    assert seen == {"dynamic_relu", "bridges", "tokens"}


@pytest.mark.parametrize("res", [32, 64, 100, 320])
def test_estimate_at_other_resolutions_and_classes(res):
    cfg = mfsearch.preset_config("mobile_former_52m")
    assert mfsearch.estimate_flops(cfg, res, num_classes=10) == mfsearch.count_flops(cfg, res, 10).flops


def test_estimate_params_matches_module():
    cfg = mfsearch.preset_config("mobile_former_96m")
    assert mfsearch.estimate_params(cfg) == sum(p.numel() for p in mfsearch.create_model(cfg).parameters())


def test_count_flops_restores_log_level_and_mode_when_tracing_fails():
    import logging

    import torch

    class Broken(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 1)

        def forward(self, x):
            raise RuntimeError("broken forward")

    log = logging.getLogger("fvcore")
    before = log.level
    log.setLevel(logging.INFO)
    try:
        model = Broken().train()
        with pytest.raises(RuntimeError, match="broken forward"):
            mfsearch.count_flops(model, resolution=32)
        assert log.level == logging.INFO and model.training
    finally:
        log.setLevel(before)
