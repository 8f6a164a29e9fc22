"""The FLOP convention, in one place.

FLOPs here are multiply-adds as fvcore counts them (the paper's convention):
convolutions, Linear layers and matrix products count one per multiply-add;
BatchNorm (eval) counts 2 per element, LayerNorm 5, adaptive average pooling 1
per input element; activations, softmax, element-wise products and additions
count zero (fvcore ignores them). Every family is counted the same way, in
eval mode, batch 1, at the architecture's own resolution, with a 1000-class
head unless told otherwise, BatchNorm included.

`count_flops` traces the model with fvcore; `estimate_flops` is the closed form
of the same count for Mobile-Former configs, fast enough for search loops, and
`estimate_parts` splits it by part (models.parts: stem_head, mobile, dyrelu, the two
bridges, former; se for MobileNetV3), as `FlopReport.parts` splits fvcore's count.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import torch
import torch.nn as nn
from fvcore.nn import FlopCountAnalysis

from .models.config import MobileFormerConfig, ModelConfig, config_from_dict
from .models.family import compared, get_family
from .models.parts import PARTS as MODEL_PARTS
from .models.parts import module_parts
from .models.registry import create_model, get_config, list_models, published

PARTS = ("stem+head", "mobile", "former", "bridge")   # the coarse split; `parts` uses models.parts.PARTS
# the fine parts folded into the coarse ones (the dynamic-ReLU MLPs count as Mobile side)
COARSE = {"stem_head": "stem+head", "mobile": "mobile", "dyrelu": "mobile", "se": "mobile",
          "mobile_to_former": "bridge", "former": "former", "former_to_mobile": "bridge", "other": "stem+head"}


@dataclass
class FlopReport:
    """fvcore's count of one model: total multiply-adds, parameters and where they go."""

    flops: int
    params: int
    resolution: int
    breakdown: dict[str, int] = field(default_factory=dict)
    parts: dict[str, int] = field(default_factory=dict)     # by models.parts.PARTS
    by_operator: dict[str, int] = field(default_factory=dict)

    @property
    def flops_without_bn(self) -> int:
        return self.flops - self.by_operator.get("batch_norm", 0)

    def share(self, part: str) -> float:
        return self.breakdown.get(part, 0) / self.flops if self.flops else 0.0


def count_flops(model_or_name_or_config: Any, resolution: int | None = None,
                num_classes: int = 1000) -> FlopReport:
    """Count multiply-adds with fvcore (eval mode, batch 1); see the module docstring."""

    if isinstance(model_or_name_or_config, nn.Module):
        model = model_or_name_or_config
        cfg = getattr(model, "config", None)
    else:
        cfg = get_config(model_or_name_or_config)
        model = create_model(cfg, num_classes=num_classes)
    res = resolution or (cfg.resolution if cfg is not None else 224)
    was_training = model.training
    fvcore_log = logging.getLogger("fvcore")
    level = fvcore_log.level
    model.eval()
    try:
        fvcore_log.setLevel(logging.ERROR)
        with torch.no_grad():
            device = next(model.parameters()).device
            analysis = FlopCountAnalysis(model, torch.zeros(1, 3, res, res, device=device))
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            total = int(analysis.total())
            by_module = analysis.by_module()
            by_op = {k: int(v) for k, v in analysis.by_operator().items()}
    finally:
        fvcore_log.setLevel(level)
        model.train(was_training)
    parts = dict.fromkeys(MODEL_PARTS, 0)
    fine = module_parts(model)
    # each module's own count (its total less its children's), so nothing counts twice: ops
    # called functionally on a non-leaf module (matmul in the bridges, pooling in the head)
    # stay with that module
    for name, mod in model.named_modules():
        own = (int(by_module.get(name, 0)) if name else total) - sum(int(by_module.get(f"{name}.{c}" if name else c, 0))
                                                for c, _ in mod.named_children())
        parts[fine[name]] += own
    breakdown = dict.fromkeys(PARTS, 0)
    for part, value in parts.items():   # the coarse split is the fine one folded: one owner
        breakdown[COARSE[part]] += value
    params = sum(p.numel() for p in model.parameters())
    return FlopReport(total, params, res, breakdown, parts, by_op)


# ---- closed form ---------------------------------------------------------------------

def _conv(hw: tuple[int, int], cin: int, cout: int, k: int, stride: int, groups: int = 1) \
        -> tuple[int, tuple[int, int]]:
    """Multiply-adds of conv + eval BatchNorm, and the output size (h, w) (pad k//2)."""
    ho, wo = ((s + 2 * (k // 2) - k) // stride + 1 for s in hw)
    return ho * wo * cout * (cin // groups) * k * k + 2 * ho * wo * cout, (ho, wo)


def _m2f(length: int, c: int, m: int, d: int) -> int:
    # q+gate Linear, two matmuls over the map, output projection, LayerNorm
    return m * d * 2 * c + 2 * m * c * length + m * c * d + 5 * m * d


def _f2m(length: int, c: int, m: int, d: int) -> int:
    return m * d * 2 * c + 2 * length * m * c


def _former(m: int, d: int, ffn: int | None) -> int:
    f = 2 * m * d * d + 2 * m * m * d + 5 * m * d
    if ffn:
        f += 2 * m * d * d * ffn + 5 * m * d
    return f


def _body_flops(cfg: MobileFormerConfig, hw: tuple[int, int], parts: dict[str, int],
                rows: int | None = None) -> tuple[int, int]:
    """Add the stem's and the first `rows` expanded rows' multiply-adds (all by default) to
    `parts` (keyed by models.parts.PARTS); returns the map size after them."""
    d, g = cfg.token_dim, cfg.group_num
    f, hw = _conv(hw, 3, cfg.stem_channels(), 3, 2)
    parts["stem_head"] += f
    for (kind, cin, cout, stride, e1, e2), (dynamic, bridged, m) in list(
            zip(cfg.expanded_rows(), cfg.row_globals()))[:rows]:
        area_in = hw[0] * hw[1]
        if kind == "lite":
            f1, hw = _conv(hw, cin, cin * e1, 3, stride, groups=cin)
            f2, _ = _conv(hw, cin * e1, cout, 1, 1, groups=g)
            parts["mobile"] += f1 + f2
            continue
        if bridged and cfg.mobile_to_former:
            parts["mobile_to_former"] += _m2f(area_in, cin, m, d)
        if bridged:
            parts["former"] += _former(m, d, cfg.ffn_expansion if cfg.former_ffn else None)
        if kind == "block":
            hidden = cin * e1
            f1, _ = _conv(hw, cin, hidden, 1, 1, groups=g)
            f2, hw = _conv(hw, hidden, hidden, 3, stride, groups=hidden)
            f3, _ = _conv(hw, hidden, cout, 1, 1, groups=g)
            widths = [hidden, hidden]
            parts["mobile"] += f1 + f2 + f3
        else:
            h1, h2 = cin * e1, cout * e2
            f1, hw = _conv(hw, cin, h1, 3, stride, groups=cin)
            f2, _ = _conv(hw, h1, cout, 1, 1, groups=g)
            f3, _ = _conv(hw, cout, h2, 3, 1, groups=cout)
            f4, _ = _conv(hw, h2, cout, 1, 1, groups=g)
            widths = [h1, h2]
            parts["mobile"] += f1 + f2 + f3 + f4
        if dynamic:   # the coefficient MLPs; applying them is element-wise (zero)
            sq = d // 4
            parts["dyrelu"] += d * sq * len(widths) + sum(sq * 2 * w for w in widths)
        if bridged and cfg.former_to_mobile:
            parts["former_to_mobile"] += _f2m(hw[0] * hw[1], cout, m, d)
    return hw


def _mobile_former_flops(cfg: MobileFormerConfig, res: int, num_classes: int) -> dict[str, int]:
    parts = dict.fromkeys(MODEL_PARTS, 0)
    m, d, g = cfg.tokens, cfg.token_dim, cfg.group_num
    tok = cfg.former
    hw = _body_flops(cfg, (res, res), parts)
    area = hw[0] * hw[1]
    last = cfg.last_channels()
    if tok and cfg.mobile_to_former:
        parts["mobile_to_former"] += _m2f(area, last, m, d)
    hidden = last * cfg.head_expansion
    f, _ = _conv(hw, last, hidden, 1, 1, groups=g)
    fc_in = hidden + (d if tok else 0)
    parts["stem_head"] += (f + area * hidden + fc_in * cfg.head_hidden + 2 * cfg.head_hidden
                           + cfg.head_hidden * num_classes)
    return parts


def estimate_body_flops(config: MobileFormerConfig | str, height: int, width: int, rows: int | None = None) -> int:
    """Closed-form multiply-adds of a Mobile-Former's stem and first `rows` expanded rows (the
    detection backbone) on a height x width input; the classifier head is not included."""
    cfg = get_config(config)
    if not isinstance(cfg, MobileFormerConfig):
        raise TypeError(f"the closed form covers Mobile-Former configs, not {cfg.family}")
    parts = dict.fromkeys(MODEL_PARTS, 0)
    _body_flops(cfg, (height, width), parts, rows)
    return sum(parts.values())


@lru_cache(maxsize=512)
def _traced_parts(cfg_json: str, res: int, num_classes: int) -> tuple[tuple[str, int], ...]:
    return tuple(count_flops(config_from_dict(json.loads(cfg_json)), res, num_classes).parts.items())


# the closed forms of the families whose descriptor says flops="closed"
CLOSED_FORMS = {MobileFormerConfig.family: _mobile_former_flops}


def estimate_parts(config: ModelConfig | str, resolution: int | None = None, num_classes: int = 1000) \
        -> dict[str, int]:
    """Multiply-adds by part (models.parts.PARTS, every part present, zeros included): the
    closed form for flops="closed" families, fvcore by module (traced once per config and
    cached) for "traced" ones. The parts sum to `estimate_flops` exactly."""
    cfg = get_config(config)
    res = resolution or cfg.resolution
    if get_family(cfg).flops == "traced":
        return dict(_traced_parts(cfg.to_json(), res, num_classes))
    return CLOSED_FORMS[cfg.family](cfg, res, num_classes)


def estimate_flops(config: ModelConfig | str, resolution: int | None = None, num_classes: int = 1000,
                   breakdown: bool = False) -> int | dict[str, int]:
    """Closed-form multiply-adds of a config under the same convention as `count_flops`.

    Families whose descriptor says flops="closed" (Mobile-Former) are computed analytically
    (microseconds); "traced" ones (MobileNetV3) are traced once per config and cached.
    `breakdown` gives the coarse split (PARTS) of a closed-form family and the total.
    """
    cfg = get_config(config)
    parts = estimate_parts(cfg, resolution, num_classes)
    total = sum(parts.values())
    if not breakdown:
        return total
    if get_family(cfg).flops == "traced":
        return {"total": total}
    coarse = dict.fromkeys(PARTS, 0)
    for part, value in parts.items():
        coarse[COARSE[part]] += value
    return {**coarse, "total": total}


def estimate_params(config: ModelConfig | str, num_classes: int = 1000) -> int:
    """Parameter count without building the model's weights (meta device); a builder that
    computes with tensors (torchvision's RegNet widths) cannot run there and is built for real.
    Cached by config: a search with a parameter budget asks for one candidate's count several
    times (its constraint, the width scan, its row), and each build takes tens of ms."""
    return _built_params(get_config(config).to_json(), num_classes)


@lru_cache(maxsize=2048)
def _built_params(cfg_json: str, num_classes: int) -> int:
    cfg = config_from_dict(json.loads(cfg_json))
    try:
        with torch.device("meta"):
            model = create_model(cfg, num_classes=num_classes)
    except (NotImplementedError, RuntimeError):
        model = create_model(cfg, num_classes=num_classes)
    return sum(p.numel() for p in model.parameters())


def flops_table() -> str:
    """Markdown table of the searched and baseline families' named models: fvcore count against
    the published figures."""
    rows = ["| model | FLOPs (M) | published | FLOPs w/o BN (M) | params (M) | published | "
            "Former+bridge share |", "|---|---|---|---|---|---|---|"]
    for name in (n for f in compared() for n in list_models(f.name)):
        r = count_flops(name)
        pub = published(name)
        share = r.share("former") + r.share("bridge")
        rows.append(f"| {name} | {r.flops / 1e6:.1f} | {pub.get('flops_M', '')} | "
                    f"{r.flops_without_bn / 1e6:.1f} | {r.params / 1e6:.2f} | {pub.get('params_M', '')} | "
                    f"{share * 100:.1f}% |")
    return "\n".join(rows)
