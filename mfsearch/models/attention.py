"""What the tokens look at: the attention weights of a Mobile-Former's bridges and Former.

`attention_maps(model, images)` runs one forward pass with capture switched on and returns
one dict per Mobile-Former block (lite blocks and blocks whose row has `bridges: false` have
no bridge and are left out; the bridge before the head is the last entry, `block: "final"`;
a model without a Former gives []). `tokens` below is the number the block runs on: all
the model's tokens, or the first few for a row with `tokens` set.

- `mobile_to_former`: B x heads x tokens x positions, each token's weights over the map
  (sums to 1 over positions);
- `former_to_mobile`: B x heads x positions x tokens, each pixel's weights over the tokens;
- `tokens`: B x heads x tokens x tokens, the Former's self-attention;
- `m2f_size` / `f2m_size`: the (height, width) of the map each bridge saw.

A switched-off bridge (an ablation) gives None for its map. Capture is a list attribute
the attention modules append to when it is not None, so the model's outputs are the same
with and without it, and a model not capturing does one `is not None` test per module.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

from .mobile_former import Former, FormerToMobile, MobileFormer, MobileFormerBlock, MobileToFormer

CAPTURED = (MobileToFormer, FormerToMobile, Former)
MAPS = ("mobile_to_former", "former_to_mobile", "tokens")


@contextmanager
def capturing(model: nn.Module):
    """Switch capture on for every attention module of `model` for the duration of the block."""
    mods = [m for m in model.modules() if isinstance(m, CAPTURED)]
    for m in mods:
        m.capture = []
    try:
        yield
    finally:
        for m in mods:
            m.capture = None


def _take(module: nn.Module | None) -> tuple[torch.Tensor | None, tuple[int, int] | None]:
    if module is None or not module.capture:
        return None, None
    return module.capture[0]


def attention_maps(model: MobileFormer, images: torch.Tensor) -> list[dict]:
    """Attention weights of one forward pass over `images` (eval mode, no gradients); the
    model's training/eval mode is restored afterwards."""
    if not isinstance(model, MobileFormer):
        raise TypeError(f"attention maps need a MobileFormer, got {type(model).__name__}")
    was_training = model.training
    model.eval()
    try:
        with capturing(model), torch.no_grad():
            model(images)
            out = [_entry(i, b.m2f, b.f2m, b.former) for i, b in enumerate(model.blocks)
                   if isinstance(b, MobileFormerBlock)]
            out.append(_entry("final", model.final_m2f, None, None))
    finally:
        model.train(was_training)
    return [e for e in out if any(e[k] is not None for k in MAPS)]   # a model without a Former has none


def _entry(block: int | str, m2f, f2m, former) -> dict:
    m2f_w, m2f_size = _take(m2f)
    f2m_w, f2m_size = _take(f2m)
    tok_w, _ = _take(former)
    return {"block": block, "mobile_to_former": m2f_w, "former_to_mobile": f2m_w, "tokens": tok_w,
            "m2f_size": m2f_size, "f2m_size": f2m_size}
