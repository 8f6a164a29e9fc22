"""Attention capture: shapes, normalisation, unchanged outputs, ablations."""
import random

import pytest
import torch
from conftest import mixed_config, random_mobile_former_config

import mfsearch
from mfsearch.models.mobile_former import MobileFormerBlock

BASE = "mobile_former_26m"


def _model(**over):
    torch.manual_seed(0)
    return mfsearch.create_model(BASE, num_classes=10, **over).eval()


def test_maps_have_the_documented_shapes_and_sum_to_one():
    model = _model()
    cfg = model.config
    x = torch.randn(2, 3, 64, 64)
    maps = mfsearch.attention_maps(model, x)
    blocks = [i for i, b in enumerate(model.blocks) if isinstance(b, MobileFormerBlock)]
    assert [m["block"] for m in maps] == blocks + ["final"]
    for m in maps[:-1]:
        h, w = m["m2f_size"]
        assert m["mobile_to_former"].shape == (2, cfg.bridge_heads, cfg.tokens, h * w)
        fh, fw = m["f2m_size"]
        assert m["former_to_mobile"].shape == (2, cfg.bridge_heads, fh * fw, cfg.tokens)
        assert m["tokens"].shape == (2, cfg.former_heads, cfg.tokens, cfg.tokens)
        for key in ("mobile_to_former", "former_to_mobile", "tokens"):
            assert torch.allclose(m[key].sum(-1), torch.ones(()), atol=1e-5), key
    assert maps[0]["m2f_size"] == (16, 16)      # 64 px, stride-4 input of the first Mobile-Former block
    assert maps[-1]["former_to_mobile"] is None and maps[-1]["mobile_to_former"] is not None


def test_capture_leaves_outputs_bit_identical_and_switches_off_again():
    model = _model()
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        before = model(x)
    mfsearch.attention_maps(model, x)
    with torch.no_grad():
        after = model(x)
    assert torch.equal(before, after)
    assert all(getattr(m, "capture", None) is None for m in model.modules())
    model.train()
    mfsearch.attention_maps(model, x)
    assert model.training  # the mode the caller left it in


@pytest.mark.parametrize("switch,empty", [("mobile_to_former", "mobile_to_former"),
                                          ("former_to_mobile", "former_to_mobile")])
def test_a_missing_bridge_gives_no_map(switch, empty):
    maps = mfsearch.attention_maps(_model(**{switch: False}), torch.randn(1, 3, 64, 64))
    assert maps and all(m[empty] is None for m in maps)
    assert all(m["tokens"] is not None for m in maps if m["block"] != "final")


def test_no_former_means_no_maps_and_other_families_are_refused():
    assert mfsearch.attention_maps(_model(former=False), torch.randn(1, 3, 64, 64)) == []
    with pytest.raises(TypeError, match="MobileFormer"):
        mfsearch.attention_maps(mfsearch.create_model("mobilenet_v3_small_050", num_classes=10),
                                torch.randn(1, 3, 64, 64))


def test_random_configs_capture():
    """Random configs, every third with one bridge switched off: a present bridge gives maps
    over the config's tokens, an ablated one gives None in every block, no Former no maps."""
    rng = random.Random(3)
    seen = set()
    for i in range(6):
        cfg = random_mobile_former_config(rng)
        cfg = cfg.replace(**[{}, {"mobile_to_former": False}, {"former_to_mobile": False}][i % 3])
        model = mfsearch.create_model(cfg, num_classes=10).eval()
        maps = mfsearch.attention_maps(model, torch.randn(1, 3, 48, 48))
        if not cfg.former:
            assert maps == []
            continue
        # the final bridge has only a Mobile->Former map: without it the entry is left out
        assert maps and (maps[-1]["block"] == "final") == cfg.mobile_to_former
        seen.update({("m2f", cfg.mobile_to_former), ("f2m", cfg.former_to_mobile)})
        for m in maps:
            if cfg.mobile_to_former:
                assert m["mobile_to_former"].shape[2] == cfg.tokens
            else:
                assert m["mobile_to_former"] is None, m["block"]
            if cfg.former_to_mobile and m["block"] != "final":  # the final bridge only reads the image
                assert m["former_to_mobile"].shape[-1] == cfg.tokens
            else:
                assert m["former_to_mobile"] is None, m["block"]
    assert seen == {("m2f", True), ("m2f", False), ("f2m", True), ("f2m", False)}  # both cases checked


def test_rows_without_bridges_are_skipped_and_fewer_tokens_give_smaller_maps():
    torch.manual_seed(0)
    model = mfsearch.create_model(mixed_config(), num_classes=10)
    maps = mfsearch.attention_maps(model, torch.randn(2, 3, 64, 64))
    # rows 1 and 4 have no bridges (conftest.MIXED_ROWS); rows 2 and 3 run on 1 and 2 tokens
    assert [m["block"] for m in maps] == [2, 3, 5, 6, 7, 8, "final"]
    tokens = {m["block"]: m["mobile_to_former"].shape[2] for m in maps}
    assert tokens == {2: 1, 3: 2, 5: 3, 6: 3, 7: 3, 8: 3, "final": 3}
    for m in maps[:-1]:
        t = tokens[m["block"]]
        assert m["former_to_mobile"].shape[-1] == t and m["tokens"].shape[-2:] == (t, t)


def test_attention_figures_and_report_take_blocks_on_fewer_tokens(tmp_path):
    """Figures, entropies and the report over blocks that run on different numbers of tokens."""
    import numpy as np

    from mfsearch.analysis.attention import Sample, report_lines, summarize
    from mfsearch.analysis.attention_figures import plot_entropy, plot_f2m, plot_m2f, plot_tokens
    torch.manual_seed(0)
    model = mfsearch.create_model(mixed_config(), num_classes=10).eval()
    images = torch.randn(1, 3, 64, 64)
    masks = torch.zeros(1, 64, 64, dtype=torch.bool)
    masks[:, 16:40, 16:40] = True
    sample = Sample(model, {"dataset": "shapes", "resolution": 64}, images, np.zeros((1, 64, 64, 3)), ["disc"], masks)
    maps = mfsearch.attention_maps(model, images)
    rows = summarize(maps, masks)
    files = plot_m2f(sample, maps, 0, False, tmp_path) + plot_f2m(sample, maps, 0, tmp_path)
    files += plot_tokens(maps, tmp_path) + plot_entropy(rows, tmp_path)
    assert all(f.stat().st_size > 1_000 for f in files)
    lines = report_lines(sample, rows)
    block2 = [line for line in lines if line.startswith("| 2 |")]   # on 1 of 3 tokens: blank cells for 2
    headers = [line for line in lines if line.startswith("| block |")]
    assert len(block2) == len(headers) == 2
    assert [line.count("|") for line in block2] == [line.count("|") for line in headers]


def _analyze():
    import importlib.util
    from pathlib import Path
    spec = importlib.util.spec_from_file_location("analyze_cli", Path(__file__).resolve().parents[1] / "analyze.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main


def _trained_checkpoint(tmp_path, name="mobile_former_26m"):
    from mfsearch.data import load_dataset
    from mfsearch.models.checkpoint import save_checkpoint
    from mfsearch.train import ProxyProtocol, train_proxy
    data = load_dataset("shapes", seed=0, synthetic_train=640, synthetic_test=100)
    r = train_proxy(name, data, ProxyProtocol(epochs=1, data_fraction=0.5, batch_size=64), keep_weights=True)
    return save_checkpoint(tmp_path / f"{name}.pt", mfsearch.get_config(name), r.num_classes, r.state_dict,
                           dataset="shapes", data_seed=0, resolution=r.proxy_resolution, final_top1=r.final_top1)


def test_analyze_attention_writes_figures_and_numbers(tmp_path, capsys):
    path = _trained_checkpoint(tmp_path)
    assert _analyze()(["attention", str(path), "--images", "2", "--out", str(tmp_path / "att")]) == 0
    out = tmp_path / "att"
    for name in ("m2f_image0.png", "m2f_image1.png", "f2m_image0.png", "tokens.png", "entropy.png"):
        assert (out / name).stat().st_size > 5_000, name
    report = (out / "attention.md").read_text()
    assert "normalised entropy" in report.lower() and "Attention on the labelled objects" in report
    assert "bridges" in capsys.readouterr().out
    assert _analyze()(["attention", str(path), "--blocks", "1", "final", "--per-head",
                       "--out", str(tmp_path / "att2")]) == 0
    assert "| final |" in (tmp_path / "att2" / "attention.md").read_text()


def _untrained_checkpoint(tmp_path, name):
    """A checkpoint file without training: enough for inputs that are refused before any weight is read."""
    from mfsearch.models.checkpoint import save_checkpoint
    model = mfsearch.create_model(name, num_classes=10)
    return save_checkpoint(tmp_path / f"{name}.pt", mfsearch.get_config(name), 10, model.state_dict(),
                           dataset="shapes", data_seed=0, resolution=32, final_top1=None)


def test_analyze_attention_bad_input_gives_one_line_and_exit_2(tmp_path, capsys):
    cases = [([str(tmp_path / "missing.pt")], "no trained weights"),
             ([str(tmp_path)], "best.pt"),
             ([str(_untrained_checkpoint(tmp_path, "mobilenet_v3_small_050"))], "need a Mobile-Former"),
             ([str(tmp_path / "mobilenet_v3_small_050.pt"), "--images", "0"], "at least 1")]
    for args, msg in cases:
        try:
            code = _analyze()(["attention", *args])
        except SystemExit as exc:
            code = exc.code
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and msg in err, (args, err)
