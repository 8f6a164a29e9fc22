"""Where the global tokens look, for a trained Mobile-Former: `python analyze.py attention
RUN_OR_CHECKPOINT [--images N] [--blocks ...] [--per-head]`.

Figures, like the paper's interpretability section:
- `m2f_imageK.png`: each token's Mobile->Former map over test image K (rows: blocks,
  columns: tokens; heads averaged, or one row per head with --per-head);
- `f2m_imageK.png`: which token each pixel reads most in Former->Mobile, per block;
- `tokens.png`: the Former's token self-attention per block (images and heads averaged);
- `entropy.png`: normalised entropy of each token's Mobile->Former map per block (1: spread
  evenly over the map, 0: on one position).
`attention.md` gives those entropies in numbers and, where the data knows where the
labelled objects are (the built-in datasets), the share of each token's attention that
falls on them against the share of the image they cover.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data import DataError, load_dataset
from ..data.loader import BatchLoader
from ..models import attention_maps
from ..models.checkpoint import model_from_checkpoint, read_checkpoint
from ..models.config import MobileFormerConfig
from .attention_figures import plot_entropy, plot_f2m, plot_m2f, plot_tokens
from .load import AnalysisError
from .markdown import table as markdown_table


@dataclass
class Sample:
    model: torch.nn.Module
    meta: dict
    images: torch.Tensor          # normalised, at the training resolution
    display: np.ndarray           # N x H x W x 3 floats in [0, 1] at the training resolution
    labels: list[str]
    masks: torch.Tensor | None    # N x H x W bool at the training resolution


def checkpoint_path(target: str | Path) -> Path:
    """A checkpoint file, or a run folder holding best.pt."""
    target = Path(target)
    path = target / "best.pt" if target.is_dir() else target
    if not path.is_file():
        hint = " (search.py keeps best.pt unless --save-weights none)" if target.is_dir() else ""
        raise AnalysisError(f"no trained weights at {path}{hint}; pass a run folder with best.pt or a .pt file")
    return path


def load_sample(target: str | Path, n_images: int = 4, data_root: str | None = None) -> Sample:
    """The trained model and `n_images` test images of the dataset it was trained on, one per
    class as far as classes go, prepared as the trainer prepared them."""
    path = checkpoint_path(target)
    try:
        ckpt = read_checkpoint(path)
        model, meta = model_from_checkpoint(ckpt), ckpt.get("meta") or {}
    except (ValueError, RuntimeError, KeyError) as exc:
        raise AnalysisError(f"{path} is not a readable mfsearch checkpoint ({exc})") from None
    if not isinstance(model.config, MobileFormerConfig):
        raise AnalysisError(f"{path} holds a {model.config.family} model; attention maps need a Mobile-Former")
    try:
        data = load_dataset(meta.get("dataset", "shapes"), root=data_root or meta.get("data_root"),
                            seed=meta.get("data_seed", 0), test_split=meta.get("test_split", 0.2))
    except DataError as exc:
        raise AnalysisError(f"the training data of {path} could not be read ({exc}); pass --data-root") from None
    idx = _one_per_class(data.test_y, n_images)
    res = int(meta.get("resolution") or data.image_size)
    mean, std = data.mean_std()
    loader = BatchLoader(data.test_x[idx], data.test_y[idx], len(idx), resolution=res, mean=mean, std=std)
    images, _ = next(iter(loader))
    raw = F.interpolate(data.test_x[idx].float() / 255, size=(res, res), mode="bilinear", align_corners=False)
    masks = None
    if data.test_masks is not None:
        masks = F.interpolate(data.test_masks[idx][:, None].float(), size=(res, res), mode="nearest")[:, 0] > 0.5
    return Sample(model.eval(), meta, images, raw.clamp(0, 1).permute(0, 2, 3, 1).numpy(),
                  [data.classes[int(c)] for c in data.test_y[idx]], masks)


def _one_per_class(y: torch.Tensor, n: int) -> torch.Tensor:
    """The first test image of each class in turn, so a few images show different objects."""
    firsts = [int((y == c).nonzero()[0]) for c in torch.unique(y)]
    taken = set(firsts)
    rest = [i for i in range(len(y)) if i not in taken]
    return torch.tensor((firsts + rest)[:max(1, n)])


def entropy(weights: torch.Tensor) -> torch.Tensor:
    """Normalised entropy over the last axis: 1 for uniform, 0 for one position."""
    n = weights.shape[-1]
    if n < 2:
        return torch.zeros(weights.shape[:-1])
    return -(weights * weights.clamp_min(1e-12).log()).sum(-1) / np.log(n)


def object_share(weights: torch.Tensor, size: tuple[int, int], masks: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Share of each (image, head, token) map on the object pixels, and the objects' share of
    the image (what a map blind to the objects would give), both at the map's resolution."""
    small = F.interpolate(masks[:, None].float(), size=size, mode="area")[:, 0].flatten(1)   # N x h*w in [0, 1]
    share = (weights * small[:, None, None, :]).sum(-1)
    return share, float(small.mean())


def summarize(maps: list[dict], masks: torch.Tensor | None) -> list[dict]:
    """Per block: Mobile->Former entropy per token (mean over images and heads), and the share
    of attention on the labelled objects per token when the masks are known."""
    rows = []
    for m in maps:
        w = m["mobile_to_former"]
        if w is None:
            continue
        row = {"block": m["block"], "size": m["m2f_size"], "entropy": entropy(w).mean((0, 1)).tolist()}
        if masks is not None:
            share, area = object_share(w, m["m2f_size"], masks)
            row["object_share"], row["object_area"] = share.mean((0, 1)).tolist(), area
        rows.append(row)
    return rows


def report_lines(sample: Sample, rows: list[dict]) -> list[str]:
    meta = sample.meta
    lines = ["# Attention maps", "",
             f"Model: {meta.get('run') or meta.get('variant') or 'checkpoint'} (trial {meta.get('trial_id', 'n/a')}), "
             f"trained on {meta.get('dataset')} at {meta.get('resolution')} px, "
             f"protocol {_protocol_text(meta.get('protocol'))}, top-1 {meta.get('final_top1')}%.",
             f"Images: {len(sample.labels)} test images ({', '.join(sample.labels)}).", "",
             "## Mobile->Former: how spread each token's attention is", "",
             "Normalised entropy of each token's map over the feature map (1 = uniform, 0 = one position), "
             "mean over images and heads.", ""]
    tokens = max(len(r["entropy"]) for r in rows)   # a block may run on its first few tokens only
    lines += markdown_table(["block", "map"] + [f"token {t}" for t in range(tokens)] + ["mean"],
                            [[r["block"], f"{r['size'][0]}x{r['size'][1]}"] + _cells(r["entropy"], tokens)
                             + [f"{np.mean(r['entropy']):.3f}"] for r in rows])
    single = [str(r["block"]) for r in rows if r["size"] == (1, 1)]
    if single:
        lines += ["", f"Blocks {', '.join(single)} see a 1x1 map (a design counted at its own resolution, trained at "
                  "a much smaller one): one position, so entropy 0 and an object share equal to the object's area "
                  "by construction, not by choice."]
    if rows and "object_share" in rows[0]:
        lines += ["", "## Attention on the labelled objects", "",
                  "Share of each token's Mobile->Former attention on the object pixels, against the share of the "
                  "map the objects cover (a token blind to the objects scores about that).", ""]
        lines += markdown_table(["block", "objects' area"] + [f"token {t}" for t in range(tokens)] + ["best / area"],
                                [[r["block"], f"{r['object_area']:.3f}"] + _cells(r["object_share"], tokens)
                                 + [f"{max(r['object_share']) / max(r['object_area'], 1e-9):.2f}x"] for r in rows])
    return lines


def _cells(values: list[float], tokens: int) -> list[str]:
    """One cell per token; a token the block does not run on is left blank."""
    return [f"{v:.3f}" for v in values] + [""] * (tokens - len(values))


def _protocol_text(p: dict | None) -> str:
    if not p:
        return "unknown"
    return f"{p.get('epochs')} ep on {p.get('data_fraction', 1):.0%}"


def analyze_attention(target: str | Path, out: str | Path | None = None, n_images: int = 4,
                      blocks: list[str] | None = None, per_head: bool = False,
                      data_root: str | None = None) -> tuple[Path, list[Path], str]:
    sample = load_sample(target, n_images, data_root)
    maps = attention_maps(sample.model, sample.images)
    if not maps:
        raise AnalysisError(f"{target}: this model has no Former, so no attention to show")
    if blocks:
        maps = [m for m in maps if str(m["block"]) in set(blocks)]
        if not maps:
            raise AnalysisError(f"none of blocks {', '.join(blocks)} has a bridge; see attention.md for the list")
    path = Path(target)
    out = Path(out) if out else (path if path.is_dir() else path.parent) / "attention"
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for k in range(len(sample.labels)):
        files += plot_m2f(sample, maps, k, per_head, out)
        files += plot_f2m(sample, maps, k, out)
    files += plot_tokens(maps, out)
    rows = summarize(maps, sample.masks)
    files += plot_entropy(rows, out)
    files.append(out / "attention.md")
    files[-1].write_text("\n".join(report_lines(sample, rows)) + "\n")
    means = ", ".join(f"{r['block']}: {np.mean(r['entropy']):.2f}" for r in rows)
    return out, files, f"{len(rows)} bridges; mean Mobile->Former entropy per block {means}"
