"""Which part of an architecture each module belongs to, so that time (mfsearch.profile) and
multiply-adds (mfsearch.flops) are split the same way.

Mobile-Former: `stem_head` (stem, the 1x1 conv before pooling, pooling, classifier head),
`mobile` (the mobile sub-blocks: convolutions, BatchNorm, shuffles, plain activations,
residual adds), `dyrelu` (the dynamic-ReLU coefficient MLPs and their application),
`mobile_to_former`, `former`, `former_to_mobile`. MobileNetV3: `stem_head` (first conv,
last 1x1 conv, pooling, classifier), `mobile` (the inverted residuals), `se`
(squeeze-and-excitation). `other` is what no rule claims: the root module's own operations
(the token expansion, a flatten), and every module of a family without rules here.
"""
from __future__ import annotations

import re

from torch import nn
from torchvision.models.mobilenetv3 import MobileNetV3
from torchvision.ops.misc import SqueezeExcitation

from .mobile_former import (
    CoeffMLPs,
    DynamicReLU,
    Former,
    FormerToMobile,
    LiteBlock,
    MobileFormer,
    MobileFormerBlock,
    MobileFormerHead,
    MobileToFormer,
)

PARTS = ("stem_head", "mobile", "dyrelu", "se", "mobile_to_former", "former", "former_to_mobile", "other")

_MOBILE_FORMER_TYPES = ((MobileToFormer, "mobile_to_former"), (FormerToMobile, "former_to_mobile"),
                        (Former, "former"), (CoeffMLPs, "dyrelu"), (DynamicReLU, "dyrelu"),
                        (MobileFormerHead, "stem_head"), (MobileFormerBlock, "mobile"), (LiteBlock, "mobile"))


def _mobile_former_claims(model: MobileFormer) -> dict[str, str]:
    claims = {"stem": "stem_head"}
    for name, mod in model.named_modules():
        for kind, part in _MOBILE_FORMER_TYPES:
            if isinstance(mod, kind):
                claims[name] = part
                break
    return claims


def _mobilenet_v3_claims(model: MobileNetV3) -> dict[str, str]:
    last = len(model.features) - 1
    claims = {"features.0": "stem_head", f"features.{last}": "stem_head", "avgpool": "stem_head",
              "classifier": "stem_head"}
    claims.update({f"features.{i}": "mobile" for i in range(1, last)})
    claims.update({name: "se" for name, mod in model.named_modules() if isinstance(mod, SqueezeExcitation)})
    return claims


def module_parts(model: nn.Module) -> dict[str, str]:
    """Every module's dotted path ('' is the root) -> its part. A module no rule claims
    belongs to its parent's part, so a rule names only where a part starts."""
    if isinstance(model, MobileFormer):
        claims = _mobile_former_claims(model)
    elif isinstance(model, MobileNetV3):
        claims = _mobilenet_v3_claims(model)
    else:
        claims = {}
    out: dict[str, str] = {}
    for name, _ in model.named_modules():   # parents come before their children
        out[name] = claims.get(name) or out.get(name.rpartition(".")[0], "other")
    return out


def part_of_path(path: str, parts: dict[str, str]) -> str:
    """The part of a module path as an exporter or profiler writes it: a second call of
    the same module may carry a suffix (`blocks.1.dyrelu@1`), and a path the map lacks
    takes its nearest listed ancestor's part."""
    path = re.sub(r"@\d+", "", path)
    while path not in parts and path:
        path = path.rpartition(".")[0]
    return parts.get(path, "other")
