"""A third family is one module: a config class and its descriptor. Registered from here, it
trains as a study row, is timed, exports to ONNX and shows up in the study's analysis."""
import importlib.util
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

import pytest
import torch
from torch import nn

from mfsearch.cli.search import main as search_main
from mfsearch.detection import create_backbone
from mfsearch.export import export_onnx
from mfsearch.flops import count_flops, estimate_flops, estimate_params
from mfsearch.latency import Timing, measure_latency
from mfsearch.models import (
    FAMILIES,
    Family,
    TorchvisionMobileConfig,
    config_from_dict,
    families,
    get_config,
    get_family,
    list_models,
    published_top1,
    register_family,
)
from mfsearch.models.torchvision_mobile import published

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class TinyCNNConfig:
    """Two strided convolutions and a linear head; widths scale with `width_mult`."""

    family: ClassVar[str] = "tiny_cnn"
    width_mult: float = 1.0
    resolution: int = 224

    def to_dict(self) -> dict:
        return {"family": self.family, **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict) -> "TinyCNNConfig":
        return cls(**{k: v for k, v in d.items() if k != "family"})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def build(self, num_classes: int = 1000) -> nn.Module:
        # widths computed with tensors, as torchvision's RegNet does: the meta device cannot run this
        w1, w2 = (torch.tensor([8.0, 16.0]) * self.width_mult).round().int().tolist()
        return nn.Sequential(nn.Conv2d(3, w1, 3, 2, 1), nn.BatchNorm2d(w1), nn.ReLU(),
                             nn.Conv2d(w1, w2, 3, 2, 1), nn.BatchNorm2d(w2), nn.ReLU(),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(w2, num_classes))


@pytest.fixture
def tiny_family():
    family = register_family(Family("tiny_cnn", TinyCNNConfig, "Tiny CNN", "#2ca02c", "^", role="candidate"))
    yield family
    FAMILIES.pop(family.name)


def test_descriptors_of_the_built_in_families():
    assert [(f.name, f.role, f.flops) for f in families()] == [("mobile_former", "candidate", "closed"),
                                                               ("mobilenet_v3", "baseline", "traced"),
                                                               ("torchvision_mobile", "reference", "traced")]
    assert get_family(get_config("mobilenet_v3_small_050")).label == "MobileNetV3"
    with pytest.raises(ValueError, match="unknown model family"):
        get_family("nope")
    with pytest.raises(ValueError, match="role"):
        Family("x", TinyCNNConfig, "X", "red", role="judge")


def test_the_reference_family_names_its_models_with_their_published_figures():
    names = list_models("torchvision_mobile")
    everything = list_models()
    assert len(names) == 12 and len(everything) == 7 + 7 + 12 and everything[-12:] == names
    assert everything[:2] == ["mobile_former_26m", "mobile_former_52m"] and everything[7] == "mobilenet_v3_large_050"
    for name in names:
        cfg = get_config(name)
        assert config_from_dict(json.loads(cfg.to_json())) == cfg and cfg.resolution == 224
        # torchvision's own figures for its V1 weights, rounded to 1M: fvcore agrees within 1% and that
        pub = published()[name]["flops_M"]
        assert abs(count_flops(name).flops_without_bn / 1e6 - pub) <= 0.5 + 0.01 * pub, name
    assert published_top1("mobilenet_v2") == 71.878 and published_top1("shufflenet_v2_x1_0") == 69.362
    assert published_top1("regnet_y_400mf") == 74.046     # V1, the paper's recipe, not V2's 75.804
    assert published_top1("mobilenet_v3_large_100") == 75.2 and published_top1("mobile_former_294m") == 77.9
    with pytest.raises(ValueError, match="resnet50"):
        TorchvisionMobileConfig("resnet50")


def test_params_fall_back_to_a_real_build_when_the_meta_device_refuses(tiny_family):
    cfg = TinyCNNConfig(width_mult=2.0)
    with pytest.raises((NotImplementedError, RuntimeError)), torch.device("meta"):
        cfg.build()
    assert estimate_params(cfg) == sum(p.numel() for p in cfg.build().parameters())


def test_a_registered_family_trains_times_exports_and_is_analysed(tiny_family, tmp_path, capsys):
    cfg = TinyCNNConfig()
    assert estimate_flops(cfg) == count_flops(cfg).flops   # traced, as its descriptor says
    record = measure_latency(cfg, runtime="torch", timing=Timing(warmup=1, min_runs=3, min_seconds=0, burst=1),
                             cache=False)
    assert record.model == "tiny_cnn" and record.median_ms > 0
    assert export_onnx(cfg, tmp_path / "tiny.onnx").stat().st_size > 0   # checked against PyTorch
    with pytest.raises(ValueError, match="no detection backbone"):
        create_backbone(cfg)

    for name, width in (("narrow", 1.0), ("wide", 2.0)):
        (tmp_path / f"{name}.json").write_text(TinyCNNConfig(width_mult=width).to_json())
    study = tmp_path / "tiny.yaml"
    study.write_text(
        "study: tiny\ndescription: a registered third family\n"
        f"variants: {{narrow: {{model: {tmp_path / 'narrow.json'}}}, wide: {{model: {tmp_path / 'wide.json'}}}}}\n"
        "seeds: [0]\ndataset: synthetic\n"
        "protocols: {default: {epochs: 1, data_fraction: 0.02, test_fraction: 0.05, batch_size: 64}}\n"
        "sizes: {smoke: {}}\n")
    assert search_main(["--experiment", str(study), "--out", str(tmp_path / "runs")]) == 0
    rows = [json.loads(line) for line in (tmp_path / "runs" / "tiny" / "rows.jsonl").read_text().splitlines()]
    assert {r["family"] for r in rows} == {"tiny_cnn"} and all(r["status"] == "complete" for r in rows)

    spec = importlib.util.spec_from_file_location("analyze_cli", REPO / "analyze.py")
    analyze = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(analyze)
    assert analyze.main([str(tmp_path / "runs" / "tiny")]) == 0
    report = (tmp_path / "runs" / "tiny" / "analysis" / "report.md").read_text()
    assert "| default | narrow |" in report and "| default | wide |" in report
    assert (tmp_path / "runs" / "tiny" / "analysis" / "study.png").stat().st_size > 5_000
