"""Detection transfer: Mobile-Former (or MobileNetV3) as a multi-scale backbone for torchvision's
RetinaNet and FCOS, a built-in synthetic detection set, a COCO-format loader, COCO mAP and a
short detection protocol. Modules, lowest first: `backbone` (create_backbone), `detector`
(build_detector, detector_flops), `data`, `metrics` (coco_map) and `train` (train_detector).
Detection studies (`search.py --experiment experiments/detection.yaml`) are the `detection`
kind in mfsearch.studies. Results and commands: docs/detection.md.
"""
from .backbone import create_backbone, load_classifier_weights
from .data import DetectionData, DetectionSplit, load_coco, load_coco_split, load_detection, make_detection_shapes
from .detector import build_detector, detector_flops
from .metrics import coco_map
from .train import DetectionProtocol, DetectionResult, evaluate_detector, train_detector

__all__ = ["create_backbone", "load_classifier_weights", "DetectionData", "DetectionSplit", "load_coco",
           "load_coco_split", "load_detection", "make_detection_shapes", "build_detector", "detector_flops",
           "coco_map", "DetectionProtocol", "DetectionResult", "evaluate_detector", "train_detector"]
