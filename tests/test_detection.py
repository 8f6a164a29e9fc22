"""Detection transfer: backbones (strides, channels, tokens, weights, closed-form MAdds),
torchvision detectors on them, the built-in set, the COCO loader, COCO mAP worked out by
hand, and a detection study end to end."""
import json
import math
import random
from pathlib import Path

import pytest
import torch
from conftest import random_mobile_former_config
from torchvision.io import write_png

import mfsearch
from mfsearch.cli.search import main as search_main
from mfsearch.data import DataError, make_shapes
from mfsearch.detection import (
    DetectionProtocol,
    build_detector,
    coco_map,
    create_backbone,
    detector_flops,
    load_coco,
    load_coco_split,
    make_detection_shapes,
    train_detector,
)
from mfsearch.flops import estimate_body_flops
from mfsearch.models.checkpoint import save_checkpoint
from mfsearch.train import ProxyProtocol, train_proxy
from spaces import MobileFormerSpace

REPO = Path(__file__).resolve().parents[1]
ABLATIONS = ("mobile_to_former", "former_to_mobile", "dynamic_relu", "former_ffn", "former")


def _check_maps(backbone, height, width):
    backbone.eval()
    with torch.no_grad():
        out = backbone(torch.randn(2, 3, height, width))
    maps = [(k, v) for k, v in out.items() if k != "tokens"]
    assert [k for k, _ in maps] == [f"c{int(math.log2(s))}" for s in backbone.out_strides]
    for (_, v), s, c in zip(maps, backbone.out_strides, backbone.out_channels):
        assert v.shape == (2, c, math.ceil(height / s), math.ceil(width / s))
    return out


@pytest.mark.parametrize("name", mfsearch.list_models("mobile_former") + ["mobilenet_v3_large_075",
                                                                           "mobilenet_v3_small_100"])
def test_backbone_strides_and_channels_for_presets(name):
    _check_maps(create_backbone(name), 128, 128)
    _check_maps(create_backbone(name, out_strides=(16, 32)), 96, 160)   # non-square, as detectors feed them


def test_backbone_for_random_configs_space_draws_and_ablations():
    rng = random.Random(3)
    cfgs = [random_mobile_former_config(rng) for _ in range(4)]
    cfgs += [MobileFormerSpace().sample(rng) for _ in range(3)]
    cfgs += [mfsearch.get_config("mobile_former_52m", **{a: False}) for a in ABLATIONS]
    for cfg in cfgs:
        strides = tuple(sorted(set(cfg.row_strides())))[-3:]
        _check_maps(create_backbone(cfg, out_strides=strides), 96, 128)


def test_tokens_are_returned_on_request_and_refused_without_a_former():
    out = _check_maps(create_backbone("mobile_former_52m", return_tokens=True), 64, 64)
    cfg = mfsearch.get_config("mobile_former_52m")
    assert out["tokens"].shape == (2, cfg.tokens, cfg.token_dim)
    with pytest.raises(ValueError, match="no Former"):
        create_backbone(cfg.replace(former=False), return_tokens=True)
    with pytest.raises(ValueError, match="strides"):
        create_backbone("mobile_former_52m", out_strides=(64,))
    with pytest.raises(ValueError, match="FPN"):
        build_detector(create_backbone("mobile_former_52m", return_tokens=True), num_classes=3)


@pytest.mark.parametrize("name,size", [("mobile_former_151m", (128, 128)), ("mobile_former_52m", (96, 160))])
def test_backbone_closed_form_madds_equal_fvcore(name, size):
    backbone = create_backbone(name)
    det = build_detector(backbone, num_classes=5, min_size=min(size), max_size=max(size))
    counted = detector_flops(det, *size)
    assert counted["backbone"] == estimate_body_flops(backbone.config, *size, rows=len(backbone.blocks))
    assert counted["total"] == counted["backbone"] + counted["fpn"] + counted["head"]
    assert min(counted.values()) > 0


def test_classification_weights_from_a_training_run_load_into_the_backbone(tmp_path):
    data = make_shapes(n_train=200, n_test=40, image_size=32, seed=0)
    protocol = ProxyProtocol(epochs=1, data_fraction=1.0, batch_size=32)
    for name in ("mobile_former_26m", "mobilenet_v3_small_050"):
        r = train_proxy(name, data, protocol, keep_weights=True)
        path = save_checkpoint(tmp_path / f"{name}.pt", mfsearch.get_config(name), r.num_classes, r.state_dict)
        loaded = create_backbone(path)
        fresh = create_backbone(name)
        for key, value in loaded.state_dict().items():
            assert torch.equal(value, r.state_dict[loaded.classifier_key(key)])
        assert any(not torch.equal(v, fresh.state_dict()[k]) for k, v in loaded.state_dict().items())
        assert create_backbone(name, weights=path).state_dict().keys() == loaded.state_dict().keys()
    with pytest.raises(ValueError, match="another architecture"):
        create_backbone("mobile_former_52m", weights=tmp_path / "mobile_former_26m.pt")


@pytest.mark.parametrize("kind", ["retinanet", "fcos"])
def test_a_tiny_detector_learns_on_the_built_in_set(kind):
    torch.manual_seed(0)
    data = make_detection_shapes(n_train=8, n_test=2, image_size=64, seed=1)
    det = build_detector("mobile_former_26m", kind, num_classes=data.num_classes, min_size=64, max_size=64,
                         fpn_channels=32)
    images = [im.float() / 255 for im in data.train.images]
    opt = torch.optim.AdamW(det.parameters(), lr=2e-3)
    det.train()
    losses = []
    for _ in range(30):
        loss = sum(det(images, data.train.targets).values())
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(det.parameters(), 10.0)   # as train_detector does
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-3:]) / 3 < 0.75 * sum(losses[:3]) / 3, losses


def test_built_in_detection_set_is_deterministic_and_boxes_are_tight():
    a, b = make_detection_shapes(20, 5, seed=4), make_detection_shapes(20, 5, seed=4)
    c = make_detection_shapes(20, 5, seed=5)
    assert all(torch.equal(x, y) for x, y in zip(a.train.images, b.train.images))
    assert not torch.equal(a.train.images[0], c.train.images[0])
    for tgt in a.train.targets:
        assert 1 <= len(tgt["boxes"]) <= 4 and len(tgt["labels"]) == len(tgt["boxes"])
        assert tgt["labels"].min() >= 0 and tgt["labels"].max() < a.num_classes
        x1, y1, x2, y2 = tgt["boxes"].unbind(1)
        assert (x1 >= 0).all() and (y1 >= 0).all() and (x2 <= 128).all() and (y2 <= 128).all()
        assert ((x2 - x1) >= 10).all() and ((y2 - y1) >= 10).all()
    with pytest.raises(DataError, match="needs image_size >= 64.*got 32, 1500, 300, 4"):
        make_detection_shapes(image_size=32)


def _coco_folder(root: Path) -> None:
    (root / "annotations").mkdir(parents=True)
    for split in ("train", "val"):
        (root / split).mkdir()
        for i, (h, w) in enumerate([(40, 60), (50, 30)]):
            write_png(torch.full((3, h, w), 40 * (i + 1), dtype=torch.uint8), str(root / split / f"im{i}.png"))
        spec = {"images": [{"id": 11, "file_name": "im0.png", "height": 40, "width": 60},
                           {"id": 12, "file_name": "im1.png", "height": 50, "width": 30}],
                "categories": [{"id": 7, "name": "cat"}, {"id": 3, "name": "dog"}],
                "annotations": [
                    {"id": 1, "image_id": 11, "category_id": 7, "bbox": [5, 6, 10, 20], "iscrowd": 0},
                    {"id": 2, "image_id": 11, "category_id": 3, "bbox": [20, 1, 30, 9], "iscrowd": 0},
                    {"id": 3, "image_id": 11, "category_id": 3, "bbox": [0, 0, 60, 40], "iscrowd": 1},
                    {"id": 4, "image_id": 11, "category_id": 7, "bbox": [1, 1, 0, 5], "iscrowd": 0}]}
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(spec))


def test_coco_loader_on_a_hand_made_file(tmp_path):
    _coco_folder(tmp_path / "set")
    data = load_coco(tmp_path / "set")
    assert data.classes == ["dog", "cat"] and data.category_ids == [3, 7]   # sorted by category id
    assert len(data.train) == 2 and data.train.image_ids == [11, 12]
    assert data.train.images[0].shape == (3, 40, 60) and data.train.images[1].shape == (3, 50, 30)
    t0, t1 = data.train.targets
    assert t0["boxes"].tolist() == [[5.0, 6.0, 15.0, 26.0], [20.0, 1.0, 50.0, 10.0]]   # crowd and empty box left out
    assert t0["labels"].tolist() == [1, 0]
    assert len(t1["boxes"]) == 0                                                        # kept as background
    gt = data.train.to_coco(data.category_ids, data.classes)
    assert [a["bbox"] for a in gt["annotations"]] == [[5.0, 6.0, 10.0, 20.0], [20.0, 1.0, 30.0, 9.0]]
    small, _, _ = load_coco_split(tmp_path / "set" / "train", tmp_path / "set" / "annotations" /
                                  "instances_train.json", max_side=30)
    assert small.images[0].shape == (3, 20, 30) and small.targets[0]["boxes"][0].tolist() == [2.5, 3.0, 7.5, 13.0]


def test_coco_loader_refuses_broken_files_in_one_line(tmp_path):
    _coco_folder(tmp_path / "set")
    ann = tmp_path / "set" / "annotations" / "instances_train.json"
    spec = json.loads(ann.read_text())
    (tmp_path / "set" / "train" / "im1.png").unlink()
    with pytest.raises(DataError, match="im1.png .* is missing"):
        load_coco(tmp_path / "set")
    spec["annotations"][0]["category_id"] = 99
    ann.write_text(json.dumps(spec))
    with pytest.raises(DataError, match="category 99"):
        load_coco_split(tmp_path / "set" / "val", ann)
    ann.write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        load_coco_split(tmp_path / "set" / "val", ann)
    with pytest.raises(DataError, match="not found"):
        load_coco(tmp_path / "nowhere")


def test_map_on_hand_built_boxes_equals_the_value_worked_out_by_hand():
    gt = {"images": [{"id": 1, "height": 100, "width": 100}],
          "categories": [{"id": 1, "name": "a"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100, "iscrowd": 0},
                          {"id": 2, "image_id": 1, "category_id": 1, "bbox": [50, 50, 20, 20], "area": 400,
                           "iscrowd": 0}]}
    # detection 1 (score 0.9) is ground truth 1 exactly; detection 2 (0.8) covers ground truth 2
    # as [50, 50, 70, 62.8]: IoU 20*12.8/400 = 0.64. At IoU thresholds 0.50, 0.55, 0.60 both match:
    # precision 1 at every recall, AP 1. At 0.65..0.95 (7 thresholds) only the first does: recall
    # stops at 0.5 with precision 1, so 51 of COCO's 101 recall points (0, 0.01, .., 0.50) score 1.
    pred = [{"image_id": 1, "boxes": [[0, 0, 10, 10], [50, 50, 70, 62.8]], "scores": [0.9, 0.8],
             "category_ids": [1, 1]}]
    got = coco_map(gt, pred)
    half = 51 / 101
    assert got["AP50"] == pytest.approx(100.0)
    assert got["AP75"] == pytest.approx(100 * half)
    assert got["AP"] == pytest.approx(100 * (3 * 1.0 + 7 * half) / 10)
    # a higher-scored false positive in front halves the precision of everything after it
    pred[0]["boxes"].insert(0, [80, 0, 95, 15])
    pred[0]["scores"].insert(0, 0.95)
    pred[0]["category_ids"].insert(0, 1)
    assert coco_map(gt, pred)["AP50"] == pytest.approx(100 * 2 / 3)   # precision 2/3 at every recall point
    assert coco_map(gt, [])["AP"] == 0.0


def test_train_detector_reports_map_madds_and_times():
    data = make_detection_shapes(n_train=16, n_test=4, image_size=64, seed=0)
    r = train_detector("mobilenet_v3_small_050", data, DetectionProtocol(epochs=1, batch_size=8, image_size=64,
                                                                        fpn_channels=16), seed=0)
    assert r.status == "complete" and 0.0 <= r.AP <= 100.0 and r.AP50 >= r.AP75
    assert r.flops["total"] == sum(v for k, v in r.flops.items() if k != "total")
    assert r.first_loss > 0 and len(r.train_loss) == 1 and r.wall_time >= r.train_time > 0


def _study_file(tmp_path: Path, **over) -> Path:
    spec = {"study": "det", "kind": "detection", "description": "test",
            "data": {"name": "shapes", "n_train": 16, "n_test": 4, "image_size": 64},
            "protocol": {"epochs": 1, "batch_size": 8, "image_size": 64, "fpn_channels": 16},
            "backbones": ["mobile_former_26m", "mobilenet_v3_small_050"],
            "pairs": [["mobile_former_26m", "mobilenet_v3_small_050"]], "inits": ["scratch", "proxy"],
            "pretrain": {"dataset": "shapes", "protocol": {"epochs": 1, "data_fraction": 0.01, "batch_size": 32}},
            "paper": {"delta_AP": 8.6, "setting": "COCO"}, "seeds": [0], "sizes": {"smoke": {}}, **over}
    path = tmp_path / "det.yaml"
    path.write_text(json.dumps(spec))
    return path


def test_detection_study_runs_resumes_and_is_analysed(tmp_path, capsys):
    from analyze import main as analyze_main
    path = _study_file(tmp_path)
    assert search_main(["--experiment", str(path), "--out", str(tmp_path / "runs")]) == 0
    rows = [json.loads(x) for x in (tmp_path / "runs" / "det" / "rows.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and {(r["backbone"], r["init"]) for r in rows} == {
        (b, i) for b in ("mobile_former_26m", "mobilenet_v3_small_050") for i in ("scratch", "proxy")}
    assert all(r["pretrain_top1"] is not None for r in rows if r["init"] == "proxy")
    # every run must have trained and been scored: a failed row or a NaN AP fails the test
    assert all(r["status"] == "complete" and math.isfinite(r["AP"]) for r in rows), rows
    assert json.loads((tmp_path / "runs" / "det" / "run.json").read_text())["kind"] == "detection"
    assert len(list((tmp_path / "runs" / "det" / "pretrain").glob("*.pt"))) == 2
    capsys.readouterr()
    assert search_main(["--experiment", str(path), "--out", str(tmp_path / "runs")]) == 0
    assert "4 of 4 already done" in capsys.readouterr().out
    assert analyze_main([str(tmp_path / "runs" / "det")]) == 0
    report = (tmp_path / "runs" / "det" / "analysis" / "report.md").read_text()
    assert "mobile_former_26m - mobilenet_v3_small_050" in report and "+8.6 AP" in report
    assert (tmp_path / "runs" / "det" / "analysis" / "detection.png").stat().st_size > 10_000


@pytest.mark.parametrize("over,message", [
    ({"protocol": {"kind": "yolo"}}, "unknown detector kind"),
    ({"inits": ["imagenet"]}, "inits"),
    ({"pairs": [["mobile_former_26m", "mobilenet_v3_large_100"]]}, "pairs"),
    ({"backbones": ["resnet50"]}, "unknown model"),
    ({"colour": 1}, "unknown keys"),
])
def test_bad_detection_study_files_get_one_line_and_exit_2(tmp_path, capsys, over, message):
    assert search_main(["--experiment", str(_study_file(tmp_path, **over)), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_the_shipped_detection_study_file_loads():
    from mfsearch.studies import load_study
    path = REPO / "experiments" / "detection.yaml"
    for size in ("smoke", "full"):
        study = load_study(path, size)
        assert study.kind == "detection" and set(study.inits) <= {"scratch", "proxy"} and study.pairs
