"""Detection data: the built-in `shapes` detection set and a COCO-format loader.

A split is a list of uint8 images (3 x H x W, sizes may differ) with one target per image:
`boxes` (K x 4, float, x1 y1 x2 y2 in pixels) and `labels` (K, int64, 0..classes-1).
`DetectionData.category_ids[label]` is the label's COCO category id, so predictions can be
written back in the file's own ids.

Built in: `make_detection_shapes` draws 1-4 objects of five classes (disc, ring, square,
triangle, plus) per image at random positions, sizes and small rotations, never
overlapping, over the textured, stroked backgrounds of the `shapes` classification set;
boxes are the tight bounds of each object's pixels. Same arguments give identical data;
nothing is downloaded.

COCO format: `load_coco(root)` reads `root/annotations/instances_{train,val}.json` with
images in `root/train/` and `root/val/` (`file_name` relative to them);
`load_coco_split(images, annotations)` reads one split from anywhere. Crowd annotations
and empty boxes are left out; images without objects stay (they teach what is background).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from ..data.core import DataError, channel_mean_std
from ..data.folders import decode_rgb
from ..data.shapes import CLASSES as SHAPE_CLASSES
from ..data.shapes import shape_masks, stroke_masks

DETECTION_CLASSES = ("disc", "ring", "square", "triangle", "plus")
_SHAPE_INDEX = [SHAPE_CLASSES.index(c) for c in DETECTION_CLASSES]
DETECTION_DATASETS = ("shapes", "coco")


@dataclass
class DetectionSplit:
    images: list[Tensor]
    targets: list[dict[str, Tensor]]
    image_ids: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.image_ids:
            self.image_ids = list(range(1, len(self.images) + 1))
        if not len(self.images) == len(self.targets) == len(self.image_ids):
            raise ValueError("a detection split needs one target and one id per image")

    def __len__(self) -> int:
        return len(self.images)

    def to_coco(self, category_ids: list[int], names: list[str]) -> dict:
        """The split's ground truth as a COCO instances dict (boxes as x, y, w, h)."""
        images, anns = [], []
        for img, tgt, iid in zip(self.images, self.targets, self.image_ids):
            images.append({"id": iid, "height": int(img.shape[-2]), "width": int(img.shape[-1])})
            for box, label in zip(tgt["boxes"].tolist(), tgt["labels"].tolist()):
                w, h = box[2] - box[0], box[3] - box[1]
                anns.append({"id": len(anns) + 1, "image_id": iid, "category_id": category_ids[label],
                             "bbox": [box[0], box[1], w, h], "area": w * h, "iscrowd": 0})
        cats = [{"id": c, "name": n} for c, n in zip(category_ids, names)]
        return {"images": images, "annotations": anns, "categories": cats}


@dataclass
class DetectionData:
    train: DetectionSplit
    test: DetectionSplit
    classes: list[str]
    name: str
    category_ids: list[int]
    _stats: tuple[tuple[float, ...], tuple[float, ...]] | None = field(default=None, init=False, repr=False)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def mean_std(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel statistics of (up to 512) training images, for the detector's normalisation."""
        if self._stats is None:
            sample = [F.interpolate(im[None].float(), size=(64, 64), mode="area").to(torch.uint8)
                      for im in self.train.images[:512]]
            self._stats = channel_mean_std(torch.cat(sample))
        return self._stats


# ---- the built-in set ---------------------------------------------------------------------

def _background(g: torch.Generator, size: int) -> tuple[Tensor, Tensor]:
    """A textured, noisy background with two line strokes, and its base colour."""
    bg = 0.2 + 0.6 * torch.rand(3, generator=g)
    img = bg[:, None, None] + F.interpolate(0.06 * torch.randn(1, 3, 6, 6, generator=g), size=(size, size),
                                            mode="bicubic", align_corners=False)[0]
    img += 0.04 * torch.randn(img.shape, generator=g)
    grid = torch.arange(size, dtype=torch.float32) + 0.5
    xs, ys = grid[None, :], grid[:, None]
    for _ in range(2):
        img = torch.where(stroke_masks(xs, ys, g, 1, size)[0], _contrasting(bg, g)[:, None, None], img)
    return img, bg


def _contrasting(bg: Tensor, g: torch.Generator) -> Tensor:
    off = torch.randn(3, generator=g)
    return (bg + off / off.norm() * (0.45 + 0.35 * torch.rand(1, generator=g))).clamp(0, 1)


def _place(g: torch.Generator, size: int, count: int, r_lo: float, r_hi: float) -> list[tuple[float, float, float]]:
    """Up to `count` non-overlapping discs (cx, cy, r) inside the image (rejection sampling)."""
    placed: list[tuple[float, float, float]] = []
    for _ in range(count * 20):
        if len(placed) == count:
            break
        r = size * (r_lo + (r_hi - r_lo) * float(torch.rand(1, generator=g)))
        cx, cy = (r + 1 + (size - 2 - 2 * r) * torch.rand(2, generator=g)).tolist()
        if all(math.hypot(cx - x, cy - y) > r + q + 2 for x, y, q in placed):
            placed.append((cx, cy, r))
    return placed


def _render(g: torch.Generator, size: int, max_objects: int) -> tuple[Tensor, dict[str, Tensor]]:
    img, bg = _background(g, size)
    grid = torch.arange(size, dtype=torch.float32) + 0.5
    xs, ys = grid[None, :], grid[:, None]
    n = 1 + int(torch.randint(max_objects, (1,), generator=g))
    boxes, labels = [], []
    for cx, cy, r in _place(g, size, n, 0.09, 0.22):
        label = int(torch.randint(len(DETECTION_CLASSES), (1,), generator=g))
        angle = math.radians(20) * (2 * float(torch.rand(1, generator=g)) - 1)
        c, s = math.cos(angle), math.sin(angle)
        u, v = (c * (xs - cx) + s * (ys - cy)) / r, (-s * (xs - cx) + c * (ys - cy)) / r
        mask = shape_masks(u, v)[_SHAPE_INDEX[label]]
        rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
        if len(rows) == 0:
            continue
        img = torch.where(mask, _contrasting(bg, g)[:, None, None], img)
        boxes.append([float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)])
        labels.append(label)
    target = {"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
              "labels": torch.tensor(labels, dtype=torch.int64)}
    return img.clamp(0, 1).mul(255).round().to(torch.uint8), target


def make_detection_shapes(n_train: int = 1500, n_test: int = 300, image_size: int = 128, max_objects: int = 4,
                          seed: int = 0) -> DetectionData:
    """The built-in detection set; identical for identical arguments."""
    if image_size < 64 or n_train < 1 or n_test < 1 or max_objects < 1:
        raise DataError(f"the shapes detection set needs image_size >= 64, n_train, n_test and max_objects >= 1; "
                        f"got {image_size}, {n_train}, {n_test}, {max_objects}")
    g = torch.Generator().manual_seed(seed)
    drawn = [_render(g, image_size, max_objects) for _ in range(n_train + n_test)]
    split = [DetectionSplit([d[0] for d in part], [d[1] for d in part])
             for part in (drawn[:n_train], drawn[n_train:])]
    return DetectionData(split[0], split[1], list(DETECTION_CLASSES), "shapes",
                         list(range(1, len(DETECTION_CLASSES) + 1)))


# ---- COCO format --------------------------------------------------------------------------

def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise DataError(f"no annotation file at {path}; a COCO-format set needs an instances JSON")
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise DataError(f"{path} is not valid JSON ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict) or not {"images", "annotations", "categories"} <= set(data):
        raise DataError(f"{path} is not a COCO instances file: it needs images, annotations and categories")
    return data


def _resized(img: Tensor, max_side: int | None) -> tuple[Tensor, float]:
    h, w = img.shape[-2:]
    if max_side is None or max(h, w) <= max_side:
        return img, 1.0
    scale = max_side / max(h, w)
    size = [max(1, round(h * scale)), max(1, round(w * scale))]
    return F.interpolate(img[None].float(), size=size, mode="area")[0].round().to(torch.uint8), scale


def load_coco_split(images: str | Path, annotations: str | Path, category_ids: list[int] | None = None,
                    max_side: int | None = None) -> tuple[DetectionSplit, list[int], list[str]]:
    """One split: images under `images`, boxes from the instances JSON `annotations`. Labels
    follow `category_ids` (default: the file's categories sorted by id). `max_side` shrinks
    larger images (and their boxes) when read, to bound memory."""
    data = _read_json(Path(annotations))
    cats = sorted(data["categories"], key=lambda c: c["id"])
    names = {c["id"]: str(c.get("name", c["id"])) for c in cats}
    category_ids = category_ids or [c["id"] for c in cats]
    label_of = {cid: i for i, cid in enumerate(category_ids)}
    by_image: dict[int, list[dict]] = {im["id"]: [] for im in data["images"]}
    for a in data["annotations"]:
        if a.get("image_id") not in by_image:
            raise DataError(f"{annotations}: annotation {a.get('id')} refers to unknown image {a.get('image_id')}")
        if a.get("category_id") not in label_of:
            raise DataError(f"{annotations}: annotation {a.get('id')} has category {a.get('category_id')}, not one "
                            f"of {category_ids}")
        by_image[a["image_id"]].append(a)
    imgs, targets, ids = [], [], []
    for im in data["images"]:
        path = Path(images) / im["file_name"]
        if not path.is_file():
            raise DataError(f"image {path} listed in {annotations} is missing")
        img, scale = _resized(decode_rgb(str(path)), max_side)
        boxes, labels = [], []
        for a in by_image[im["id"]]:
            x, y, w, h = (float(v) for v in a["bbox"])
            if a.get("iscrowd", 0) or w <= 0 or h <= 0:
                continue
            boxes.append([x * scale, y * scale, (x + w) * scale, (y + h) * scale])
            labels.append(label_of[a["category_id"]])
        imgs.append(img)
        targets.append({"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                        "labels": torch.tensor(labels, dtype=torch.int64)})
        ids.append(int(im["id"]))
    return DetectionSplit(imgs, targets, ids), category_ids, [names.get(c, str(c)) for c in category_ids]


def load_coco(root: str | Path, max_side: int | None = None) -> DetectionData:
    """A COCO-format folder: annotations/instances_train.json + train/, annotations/instances_val.json + val/."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"COCO-format folder {root} not found; it needs annotations/instances_train.json, "
                        "annotations/instances_val.json, train/ and val/")
    train, cat_ids, names = load_coco_split(root / "train", root / "annotations" / "instances_train.json",
                                            max_side=max_side)
    test, _, _ = load_coco_split(root / "val", root / "annotations" / "instances_val.json", cat_ids, max_side)
    return DetectionData(train, test, names, root.name, cat_ids)


def load_detection(name: str, root: str | None = None, seed: int = 0, **shapes_args: int) -> DetectionData:
    """`shapes` (built in; `shapes_args` go to make_detection_shapes) or `coco` (a COCO-format folder at `root`)."""
    if name == "shapes":
        return make_detection_shapes(seed=seed, **shapes_args)
    if name == "coco":
        if not root:
            raise DataError("the coco dataset needs a root: a folder with annotations/ train/ and val/")
        return load_coco(root, max_side=shapes_args.get("max_side"))
    raise DataError(f"unknown detection dataset {name!r}; choose {' or '.join(DETECTION_DATASETS)}")
