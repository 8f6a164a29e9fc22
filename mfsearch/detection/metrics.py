"""COCO mAP through pycocotools (the reference implementation of the COCO protocol).

`coco_map(ground_truth, predictions)` takes the ground truth as a COCO instances dict
(`DetectionSplit.to_coco`) and predictions as one dict per image (`image_id`, `boxes`
x1 y1 x2 y2, `scores`, `category_ids`), and returns AP (IoU 0.50:0.95), AP50 and AP75 in
percent, over all areas with up to 100 detections per image, as the COCO leaderboard does.
"""
from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable

import numpy as np


def _coco(dataset: dict):
    from pycocotools.coco import COCO  # only scoring needs pycocotools, not importing mfsearch
    gt = COCO()
    gt.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):   # pycocotools prints progress on every call
        gt.createIndex()
    return gt


def coco_map(ground_truth: dict, predictions: Iterable[dict]) -> dict[str, float]:
    """{"AP", "AP50", "AP75"} in percent; 0 for all three when nothing was detected."""
    rows = []
    for p in predictions:
        for box, score, cat in zip(np.asarray(p["boxes"], dtype=float).reshape(-1, 4),
                                   np.asarray(p["scores"], dtype=float).reshape(-1),
                                   np.asarray(p["category_ids"]).reshape(-1)):
            rows.append([p["image_id"], box[0], box[1], box[2] - box[0], box[3] - box[1], score, int(cat)])
    if not rows or not ground_truth["annotations"]:
        return {"AP": 0.0, "AP50": 0.0, "AP75": 0.0}
    gt = _coco(ground_truth)
    from pycocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(np.array(rows))
        ev = COCOeval(gt, dt, iouType="bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    # stats[0:3]: AP@[.50:.95], AP@.50, AP@.75 (all areas, 100 detections); -1 means no ground truth
    ap, ap50, ap75 = (max(0.0, float(s)) * 100 for s in ev.stats[:3])
    return {"AP": ap, "AP50": ap50, "AP75": ap75}
