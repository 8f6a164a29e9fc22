"""The built-in synthetic dataset: a relation task generated offline, deterministic from the seed.

Each image holds a plus sign, a filled square and sometimes a distractor disc, with
random colours on a random textured, noisy background. The class is the direction
of the square as seen from the plus (one of ``num_classes`` angular sectors), so it
needs local processing (which blob is which shape) and global processing (their
relative position); colour and texture carry no label information. Baselines and
timings: docs/data.md.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .core import DataError, InMemoryData

_SYNTH_CHUNK = 4096  # images rendered at once; fixed because the noise stream depends on it


def _paint(img: Tensor, mask: Tensor, color: Tensor) -> Tensor:
    return torch.where(mask[:, None], color[:, :, None, None], img)


def make_synthetic(n_train: int = 20_000, n_test: int = 4_000, image_size: int = 32,
                   num_classes: int = 10, seed: int = 0) -> InMemoryData:
    """Procedural relation dataset: class = direction of the square as seen from the plus sign.

    The angle is drawn from the middle 40% of the class's sector and the two
    shapes are at least 9/32 of the image apart, so labels are unambiguous;
    shape sizes, positions, colours, background texture, pixel noise and an
    optional distractor disc are nuisances. Same arguments give identical tensors.
    """
    if not 2 <= num_classes <= 36:
        raise DataError(f"synthetic num_classes must be in 2..36 (one angular sector each), got {num_classes}")
    if image_size < 16:
        raise DataError(f"synthetic image_size must be at least 16, got {image_size}")
    if n_train < num_classes or n_test < 0:
        raise DataError(f"synthetic needs n_train >= num_classes ({num_classes}) and n_test >= 0, "
                        f"got {n_train} / {n_test}; pass larger sizes")
    n, size, scale = n_train + n_test, image_size, image_size / 32
    g = torch.Generator().manual_seed(seed)
    y = torch.cat([(torch.arange(m) % num_classes)[torch.randperm(m, generator=g)]  # balanced splits
                   for m in (n_train, n_test)])

    # Layout: plus at a, square at b = a + dist * (cos theta, -sin theta), theta in the class sector.
    r_plus = (3 + 1.5 * torch.rand(n, generator=g)) * scale
    r_square = (3 + 1.5 * torch.rand(n, generator=g)) * scale
    theta = (y + 0.5 + 0.4 * (torch.rand(n, generator=g) - 0.5)) * (2 * math.pi / num_classes)
    margin = torch.maximum(r_plus, r_square) + 1
    d_min, d_max = 9 * scale, size - 1 - 2 * margin
    dist = d_min + (d_max - d_min) * torch.rand(n, generator=g)
    dx, dy = dist * torch.cos(theta), -dist * torch.sin(theta)
    lo_x, lo_y = margin - dx.clamp(max=0), margin - dy.clamp(max=0)
    ax = lo_x + (size - 1 - margin - dx.clamp(min=0) - lo_x) * torch.rand(n, generator=g)
    ay = lo_y + (size - 1 - margin - dy.clamp(min=0) - lo_y) * torch.rand(n, generator=g)
    bx, by = ax + dx, ay + dy
    disc_xy = margin[:, None] + (size - 1 - 2 * margin[:, None]) * torch.rand(n, 2, generator=g)
    disc_r = (3 + 1.5 * torch.rand(n, generator=g)) * scale
    disc_on = torch.rand(n, generator=g) < 0.5

    # Colours: background in the mid range, shapes offset from it in a random RGB direction.
    bg = 0.25 + 0.5 * torch.rand(n, 3, generator=g)
    offset = torch.randn(n, 3, 3, generator=g)
    offset = offset / offset.norm(dim=-1, keepdim=True) * (0.45 + 0.3 * torch.rand(n, 3, 1, generator=g))
    colors = (bg[:, None] + offset).clamp(0, 1)  # plus, square, disc
    texture = 0.12 * torch.randn(n, 3, 5, 5, generator=g)

    out = torch.empty(n, 3, size, size, dtype=torch.uint8)
    objects = torch.empty(n, size, size, dtype=torch.bool)   # plus and square: what the label depends on
    xs = torch.arange(size, dtype=torch.float32)[None, None, :]
    ys = torch.arange(size, dtype=torch.float32)[None, :, None]
    for s in range(0, n, _SYNTH_CHUNK):  # rendered in chunks to bound float memory
        sl = slice(s, min(n, s + _SYNTH_CHUNK))
        img = bg[sl, :, None, None] + F.interpolate(texture[sl], size=(size, size), mode="bicubic",
                                                    align_corners=False)
        img += 0.06 * torch.randn(img.shape, generator=g)
        ddx, ddy = xs - disc_xy[sl, 0, None, None], ys - disc_xy[sl, 1, None, None]
        disc = (ddx.square() + ddy.square() <= disc_r[sl, None, None].square()) & disc_on[sl, None, None]
        img = _paint(img, disc, colors[sl, 2])
        ddx, ddy = (xs - ax[sl, None, None]).abs(), (ys - ay[sl, None, None]).abs()
        rad = r_plus[sl, None, None]
        arm = rad / 2
        plus = ((ddx <= rad) & (ddy <= arm)) | ((ddy <= rad) & (ddx <= arm))
        img = _paint(img, plus, colors[sl, 0])
        rad = r_square[sl, None, None]
        square = ((xs - bx[sl, None, None]).abs() <= rad) & ((ys - by[sl, None, None]).abs() <= rad)
        img = _paint(img, square, colors[sl, 1])
        objects[sl] = plus | square
        out[sl] = img.clamp_(0, 1).mul_(255).round_().to(torch.uint8)

    step = 360 / num_classes
    classes = [f"square_at_{(c + 0.5) * step:g}deg" for c in range(num_classes)]
    return InMemoryData(out[:n_train], y[:n_train], out[n_train:], y[n_train:], num_classes, classes,
                        "synthetic", hflip=False, test_masks=objects[n_train:].clone())
