"""The generator: ablation switches, JSON round trip, resolutions, registry errors."""
import json
import random

import pytest
import torch
import torch.nn.functional as F
from conftest import mixed_config, random_mobile_former_config, with_row_options

import mfsearch
from mfsearch.models import MobileFormerConfig, MobileNetV3Config, config_from_dict
from mfsearch.models.mobile_former import (
    ChannelShuffle,
    DynamicReLU,
    MobileFormerBlock,
    dynamic_relu,
    dynamic_relu_inference,
)

BASE = "mobile_former_52m"


def _forward_backward(model, res=64, classes=10):
    x = torch.randn(2, 3, res, res)
    y = model(x)
    assert y.shape == (2, classes) and torch.isfinite(y).all()
    y.sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads)
    return y


def _blocks(model):
    return [b for b in model.blocks if isinstance(b, MobileFormerBlock)]


def test_published_model_has_every_part():
    model = mfsearch.create_model(BASE, num_classes=10)
    for b in _blocks(model):
        assert b.m2f is not None and b.f2m is not None and b.former.ffn is not None and b.coeffs is not None
    assert model.tokens.shape == (3, 128) and model.final_m2f is not None
    _forward_backward(model)


@pytest.mark.parametrize("switch,check", [
    ("mobile_to_former", lambda m: all(b.m2f is None for b in _blocks(m)) and m.final_m2f is None),
    ("former_to_mobile", lambda m: all(b.f2m is None for b in _blocks(m))),
    ("dynamic_relu", lambda m: all(b.coeffs is None for b in _blocks(m))),
    ("former_ffn", lambda m: all(b.former.ffn is None for b in _blocks(m))),
    ("former", lambda m: m.tokens is None and all(b.former is None and b.m2f is None and b.f2m is None
                                                  and b.coeffs is None for b in _blocks(m))),
])
def test_ablation_switch(switch, check):
    full = mfsearch.create_model(BASE, num_classes=10)
    model = mfsearch.create_model(BASE, num_classes=10, **{switch: False})
    assert check(model)
    assert sum(p.numel() for p in model.parameters()) < sum(p.numel() for p in full.parameters())
    _forward_backward(model)
    assert mfsearch.estimate_flops(model.config, 64, 10) == mfsearch.count_flops(model, 64, 10).flops
    assert mfsearch.estimate_flops(model.config) < mfsearch.estimate_flops(BASE)


def test_no_former_head_takes_no_token():
    model = mfsearch.create_model(BASE, num_classes=10, former=False)
    hidden = model.head.conv[-1].num_features
    assert model.head.fc.in_features == hidden


def test_plain_relu_without_dynamic_relu_is_relu():
    model = mfsearch.create_model(BASE, num_classes=10, dynamic_relu=False).eval()
    block = _blocks(model)[0]
    x = torch.randn(3, 4)
    assert torch.equal(block._act(x, None, 0), torch.relu(x))


def test_dynamic_relu_is_max_of_two_lines():
    torch.manual_seed(0)
    x = torch.randn(4, 6, 5, 5, dtype=torch.double, requires_grad=True)
    coeffs = torch.rand(4, 12, dtype=torch.double, requires_grad=True)
    a1 = 2 * coeffs[:, :6, None, None]
    a2 = 2 * coeffs[:, 6:, None, None] - 1
    assert torch.allclose(dynamic_relu(x, coeffs), torch.maximum(a1 * x, a2 * x))
    assert torch.autograd.gradcheck(dynamic_relu, (x, coeffs))
    assert torch.allclose(dynamic_relu_inference(x, coeffs), torch.maximum(a1 * x, a2 * x))


def test_eval_mode_dynamic_relu_gives_the_training_form_outputs(monkeypatch):
    """Eval mode (inference, ONNX export) computes dynamic ReLU with fewer ops; the logits
    equal the training form's (the formulation before the change) to 1e-5, presets and
    random configs alike, and training mode still uses the training form."""
    rng = random.Random(5)
    cfgs = [mfsearch.get_config(n) for n in ("mobile_former_26m", "mobile_former_151m")]
    cfgs += [random_mobile_former_config(rng) for _ in range(3)]
    x = torch.randn(2, 3, 64, 64)
    for cfg in cfgs:
        model = mfsearch.create_model(cfg, num_classes=10).eval()
        with torch.no_grad():
            got = model(x)
            with monkeypatch.context() as m:
                m.setattr(DynamicReLU, "forward", lambda self, a, c: dynamic_relu(a, c))
                want = model(x)
        assert (got - want).abs().max() <= 1e-5, cfg.to_json()
    called = []
    monkeypatch.setattr("mfsearch.models.mobile_former.dynamic_relu", lambda a, c: called.append(1) or a)
    mfsearch.create_model("mobile_former_26m", num_classes=10).train()(x)
    assert called


@pytest.mark.parametrize("name", ["mobile_former_26m", "mobile_former_151m", "mobile_former_508m"])
def test_json_round_trip_rebuilds_identical_model(name):
    cfg = mfsearch.preset_config(name)
    text = cfg.to_json()
    again = MobileFormerConfig.from_json(text)
    assert again == cfg and again.to_json() == text
    torch.manual_seed(3)
    a = mfsearch.create_model(cfg, num_classes=7).eval()
    torch.manual_seed(3)
    b = mfsearch.create_model(config_from_dict(json.loads(text)), num_classes=7).eval()
    assert sum(p.numel() for p in a.parameters()) == sum(p.numel() for p in b.parameters())
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))


def test_random_configs_round_trip_and_run():
    rng = random.Random(1)
    for _ in range(10):
        cfg = random_mobile_former_config(rng)
        assert MobileFormerConfig.from_json(cfg.to_json()) == cfg
        _forward_backward(mfsearch.create_model(cfg, num_classes=5), res=48, classes=5)


def test_row_options_build_what_they_say():
    """mixed_config's rows (conftest.MIXED_ROWS): each block carries what its row asks for."""
    model = mfsearch.create_model(mixed_config(), num_classes=10)
    b = model.blocks
    assert b[1].m2f is None and b[1].former is None and b[1].f2m is None and b[1].coeffs is None
    assert b[2].split == 1 and b[2].coeffs is None and b[2].m2f is not None and b[2].f2m is not None
    assert b[3].split == 2 and b[3].coeffs is not None
    assert b[4].former is None and b[4].m2f is None and b[4].coeffs is not None   # dynamic ReLU, no bridges
    assert all(blk.split is None and blk.former is not None and blk.coeffs is not None for blk in b[5:])
    assert model.tokens.shape == (3, 128) and model.head.conv[1].out_channels == 4 * model.config.last_channels()
    _forward_backward(model)


def test_tokens_a_block_does_not_run_on_pass_through_unchanged():
    model = mfsearch.create_model(mixed_config(), num_classes=10).eval()
    x, z = torch.randn(2, 12, 16, 16), torch.randn(2, 3, 128)
    with torch.no_grad():
        _, z1 = model.blocks[1](x, z)                    # no bridges: every token passes
        assert z1 is z
        _, z2 = model.blocks[3](torch.randn(2, 24, 8, 8), z)   # on the first 2 tokens: the third passes
        assert torch.equal(z2[:, 2:], z[:, 2:]) and not torch.equal(z2[:, :2], z[:, :2])


def test_static_row_uses_plain_relu():
    block = mfsearch.create_model(mixed_config(), num_classes=10).blocks[2]
    x = torch.randn(3, 4)
    assert torch.equal(block._act(x, None, 0), torch.relu(x))   # coeffs is None there


def test_row_options_round_trip_and_default_rows_keep_six_columns():
    cfg = mixed_config()
    again = MobileFormerConfig.from_json(cfg.to_json())
    assert again == cfg and again.to_json() == cfg.to_json()
    assert [len(r) for r in json.loads(cfg.to_json())["blocks"]] == [6, 7, 7, 7, 7, 6, 6, 6, 6]
    # a row on all the model's tokens, or with options at their defaults, is the published row
    plain = mfsearch.preset_config("mobile_former_26m")
    spelled = plain.replace(blocks=tuple([*b.to_row(), {"tokens": 3, "bridges": True}] if b.kind != "lite"
                                         else b.to_row() for b in plain.blocks))
    assert spelled == plain and spelled.to_json() == plain.to_json()
    off = plain.replace(dynamic_relu=False)
    assert off.replace(blocks=tuple([*b.to_row(), {"dynamic_relu": False}] if b.kind != "lite" else b.to_row()
                                    for b in plain.blocks)).to_json() == off.to_json()
    rng = random.Random(2)
    for _ in range(6):
        cfg = with_row_options(random_mobile_former_config(rng), rng)
        assert MobileFormerConfig.from_json(cfg.to_json()) == cfg
        _forward_backward(mfsearch.create_model(cfg, num_classes=5), res=48, classes=5)


@pytest.mark.parametrize("rows,over,msg", [
    ((["lite", 3, 12, 1, 2, 0, {"bridges": False}],), {}, "lite row"),
    ((["lite", 3, 12, 1, 2, 0], ["down", 6, 24, 1, 2, 4, {"tokens": 4}]), {}, "must be in 1..3"),
    ((["lite", 3, 12, 1, 2, 0], ["down", 6, 24, 1, 2, 4, {"tokens": 1, "bridges": False}]), {}, "no bridges"),
    ((["lite", 3, 12, 1, 2, 0], ["down", 6, 24, 1, 2, 4, {"dynamic_relu": False}]), {"former": False}, "no Former"),
    ((["lite", 3, 12, 1, 2, 0], ["down", 6, 24, 1, 2, 4, {"colour": 1}]), {}, "unknown block row options"),
    ((["lite", 3, 12, 1, 2, 0, 0, 0],), {}, "optional dict"),
    ((["lite", 3, 12, 1, 2, 0],), {"head_expansion": 0}, "head_expansion"),
])
def test_invalid_row_options_are_refused(rows, over, msg):
    with pytest.raises(ValueError, match=msg):
        mfsearch.get_config("mobile_former_26m", blocks=rows, **over)


@pytest.mark.parametrize("res", [32, 47, 128, 320])
def test_any_resolution_and_class_count(res):
    for name in ["mobile_former_26m", "mobile_former_96m"]:
        model = mfsearch.create_model(name, num_classes=3)
        _forward_backward(model, res=res, classes=3)


def test_channels_last_matches_contiguous():
    torch.manual_seed(0)
    model = mfsearch.create_model("mobile_former_96m", num_classes=10).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)
        out = model.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(ref, out, atol=1e-5)


def test_channel_shuffle_channels_last_matches_contiguous():
    torch.manual_seed(0)
    x = torch.randn(2, 24, 5, 7)
    for groups in (2, 3, 4, 8):
        shuffle = ChannelShuffle(groups)
        ref = shuffle(x)
        out = shuffle(x.contiguous(memory_format=torch.channels_last))
        assert torch.equal(ref, F.channel_shuffle(x, groups)) and not torch.equal(ref, x)
        assert out.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(out, ref)  # a permutation of channels: bit for bit
        # and its gradient is the inverse permutation, as through the contiguous form
        grad = torch.randn_like(ref)
        a, b = x.clone().requires_grad_(), x.contiguous(memory_format=torch.channels_last).requires_grad_()
        shuffle(a).backward(grad)
        shuffle(b).backward(grad)
        assert torch.equal(a.grad, b.grad)


@pytest.mark.parametrize("name,overrides", [("mobile_former_26m", {}),
                                            ("mobile_former_52m", {"group_num": 2})])
def test_grouped_model_channels_last_matches_contiguous(name, overrides):
    torch.manual_seed(0)
    model = mfsearch.create_model(name, num_classes=10, **overrides).eval()
    assert model.config.group_num > 1
    assert any(isinstance(m, ChannelShuffle) for m in model.modules())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)
        out = model.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(out, ref, rtol=1e-4, atol=1e-6), (out - ref).abs().max()


def test_group_num_builds_shuffled_grouped_convs():
    model = mfsearch.create_model("mobile_former_26m", num_classes=10)
    groups = {m.groups for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (1, 1)}
    assert 4 in groups
    _forward_backward(model)


def test_mobilenet_v3_family():
    for name in mfsearch.list_models("mobilenet_v3"):
        model = mfsearch.create_model(name, num_classes=10)
        _forward_backward(model, res=32)
    cfg = MobileNetV3Config("small", 0.75)
    assert config_from_dict(json.loads(cfg.to_json())) == cfg


def test_overrides_and_json_file(tmp_path):
    model = mfsearch.create_model("mobile_former_151m", num_classes=10, tokens=3, width_mult=0.75)
    assert model.tokens.shape[0] == 3 and model.config.width_mult == 0.75
    path = tmp_path / "best.json"
    path.write_text(json.dumps({"config": model.config.to_dict(), "top1": 0.5}))
    assert mfsearch.create_model(str(path), num_classes=10).config == model.config


@pytest.mark.parametrize("bad,msg", [
    (dict(token_dim=130), "divisible"), (dict(resolution=16), "resolution"),
    (dict(blocks=(("wide", 2, 8, 1, 1, 0),)), "kind"), (dict(dropout=1.5), "dropout"),
    (dict(blocks=(("down", 2, 8, 1, 2, 0),)), "e2"),
])
def test_invalid_configs_are_refused(bad, msg):
    cfg = mfsearch.preset_config(BASE)
    with pytest.raises(ValueError, match=msg):
        MobileFormerConfig(**{**cfg.__dict__, **bad})


def test_unknown_model_name():
    with pytest.raises(KeyError, match="unknown model"):
        mfsearch.create_model("mobile_former_1m")
