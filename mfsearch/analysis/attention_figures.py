"""Figures of `analyze.py attention`: token maps over the image, the token each pixel
reads, token self-attention and entropy per block."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import torch

from .figures import save

if TYPE_CHECKING:
    from .attention import Sample


def _upsample(w: torch.Tensor, size: tuple[int, int], out: int) -> np.ndarray:
    grid = w.reshape(-1, 1, *size)
    up = torch.nn.functional.interpolate(grid, size=(out, out), mode="bilinear", align_corners=False)
    return up.reshape(*w.shape[:-1], out, out).numpy()


def plot_m2f(sample: Sample, maps: list[dict], k: int, per_head: bool, out_dir: Path) -> list[Path]:
    """Rows: blocks (x heads with per_head); columns: the image, then each token's map over it."""
    img = sample.display[k]
    res = img.shape[0]
    rows = []
    for m in maps:
        w = m["mobile_to_former"]
        if w is None:
            continue
        heads = range(w.shape[1]) if per_head else [None]
        for h in heads:
            sel = w[k].mean(0) if h is None else w[k, h]                      # tokens x positions
            rows.append((f"{m['block']}" + ("" if h is None else f" h{h}"), _upsample(sel, m["m2f_size"], res)))
    tokens = max(up.shape[0] for _, up in rows)   # a block may run on the first few tokens only
    fig, axes = plt.subplots(len(rows), tokens + 1, figsize=(1.3 * (tokens + 1), 1.3 * len(rows)), squeeze=False)
    for r, (label, up) in enumerate(rows):
        axes[r, 0].imshow(img)
        axes[r, 0].set_ylabel(f"block {label}", fontsize=7)
        for t in range(up.shape[0]):
            axes[r, t + 1].imshow(img)
            axes[r, t + 1].imshow(up[t], cmap="inferno", alpha=0.6)
    for t in range(tokens):
        axes[0, t + 1].set_title(f"token {t}", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        if not ax.images:
            ax.axis("off")   # a token this block does not run on
    fig.suptitle(f"Mobile->Former: where each token looks ({sample.labels[k]})", fontsize=9)
    return save(fig, out_dir, f"m2f_image{k}", 0.0, 0.97, svg=False)


def plot_f2m(sample: Sample, maps: list[dict], k: int, out_dir: Path) -> list[Path]:
    """Per block: the token each pixel reads most (heads averaged) over the image."""
    img = sample.display[k]
    blocks = [m for m in maps if m["former_to_mobile"] is not None]
    if not blocks:
        return []
    tokens = max(m["former_to_mobile"].shape[-1] for m in blocks)
    cmap = plt.get_cmap("tab10" if tokens <= 10 else "tab20", tokens)
    fig, axes = plt.subplots(1, len(blocks) + 1, figsize=(1.5 * (len(blocks) + 1), 1.9), squeeze=False)
    axes[0, 0].imshow(img)
    axes[0, 0].set_title(sample.labels[k], fontsize=7)
    for i, m in enumerate(blocks, 1):
        w = m["former_to_mobile"][k].mean(0)                                   # positions x tokens
        choice = w.argmax(-1).reshape(m["f2m_size"]).numpy()
        axes[0, i].imshow(img)
        axes[0, i].imshow(choice, cmap=cmap, vmin=-0.5, vmax=tokens - 0.5, alpha=0.55,
                          extent=(0, img.shape[1], img.shape[0], 0), interpolation="nearest")
        axes[0, i].set_title(f"block {m['block']}", fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("Former->Mobile: the token each pixel reads most (colour = token)", fontsize=8)
    return save(fig, out_dir, f"f2m_image{k}", 0.0, 0.9, svg=False)


def plot_tokens(maps: list[dict], out_dir: Path) -> list[Path]:
    blocks = [m for m in maps if m["tokens"] is not None]
    if not blocks:
        return []
    fig, axes = plt.subplots(1, len(blocks), figsize=(1.6 * len(blocks), 1.9), squeeze=False)
    for ax, m in zip(axes.flat, blocks):
        ax.imshow(m["tokens"].mean((0, 1)).numpy(), cmap="viridis", vmin=0, vmax=1)
        ax.set_title(f"block {m['block']}", fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("Former token self-attention (row: query token; images and heads averaged)", fontsize=8)
    return save(fig, out_dir, "tokens", 0.0, 0.88, svg=False)


def plot_entropy(rows: list[dict], out_dir: Path) -> list[Path]:
    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    ent = np.full((len(rows), max(len(r["entropy"]) for r in rows)), np.nan)  # blocks x tokens; NaN: not run on
    for i, r in enumerate(rows):
        ent[i, :len(r["entropy"])] = r["entropy"]
    xs = np.arange(len(rows))
    for t in range(ent.shape[1]):
        ax.plot(xs, ent[:, t], marker="o", ms=3, label=f"token {t}")
    ax.set_xticks(xs)
    ax.set_xticklabels([str(r["block"]) for r in rows], fontsize=8)
    ax.set_xlabel("block (input side to head)")
    ax.set_ylabel("normalised entropy of the\nMobile->Former map")
    ax.set_ylim(0, 1.02)
    if ent.shape[1] <= 8:
        ax.legend(fontsize=7, ncol=2)
    return save(fig, out_dir, "entropy", 0.0)
