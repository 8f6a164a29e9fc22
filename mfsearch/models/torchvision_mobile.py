"""Other mobile ImageNet families from torchvision, as a third family with the role
`reference`: never proposed or compared by a search, only ranked against their published
ImageNet top-1 (experiments/proxy_calibration_others.yaml), the second, independent set
that asks whether a cheap proxy orders architectures like ImageNet does.

The published figures are torchvision's own for its IMAGENET1K_V1 weights (each paper's
recipe reproduced; its model docs): top-1 and MAdds ("GFLOPS") come from the weights'
metadata, which ships with the library, so nothing is downloaded.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import ClassVar

from torch import nn
from torchvision import models as tvm

from .family import Family, register_family

# MobileNetV2, MnasNet, ShuffleNetV2, EfficientNet-B0 and RegNet 400MF: every torchvision
# classification model under 600M MAdds with a published ImageNet top-1 but SqueezeNet (no
# mobile design) and the MobileNetV3 widths (a family of their own)
ARCHS = ("shufflenet_v2_x0_5", "mnasnet0_5", "shufflenet_v2_x1_0", "mnasnet0_75", "shufflenet_v2_x1_5",
         "mobilenet_v2", "mnasnet1_0", "efficientnet_b0", "regnet_y_400mf", "regnet_x_400mf", "mnasnet1_3",
         "shufflenet_v2_x2_0")


@dataclass(frozen=True)
class TorchvisionMobileConfig:
    """A torchvision classification model by its builder name, at its design resolution."""

    family: ClassVar[str] = "torchvision_mobile"

    arch: str = "mobilenet_v2"
    resolution: int = 224

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"invalid TorchvisionMobileConfig: arch {self.arch!r} is not one of {', '.join(ARCHS)}")
        if not 32 <= self.resolution <= 320:   # the MobileNetV3 config's range: the proxy scales from 224
            raise ValueError(f"invalid TorchvisionMobileConfig: resolution {self.resolution} is outside 32..320")

    def to_dict(self) -> dict:
        return {"family": self.family, **asdict(self)}

    def build(self, num_classes: int = 1000) -> nn.Module:
        model = tvm.get_model(self.arch, weights=None, num_classes=num_classes)
        model.config = self  # type: ignore[attr-defined]
        return model

    @classmethod
    def from_dict(cls, d: dict) -> TorchvisionMobileConfig:
        return cls(**{k: v for k, v in d.items() if k != "family"})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


@lru_cache(maxsize=1)
def published() -> dict[str, dict]:
    """Each arch's ImageNet top-1 and MAdds (M) as torchvision publishes them for its V1 weights."""
    out = {}
    for arch in ARCHS:
        # `_ops` (GFLOPS, multiply-adds) is underscored but is what torchvision's model docs
        # print for every weight; fvcore's count agrees (tests/test_families.py)
        meta = tvm.get_model_weights(arch)["IMAGENET1K_V1"].meta
        out[arch] = {"top1": meta["_metrics"]["ImageNet-1K"]["acc@1"], "flops_M": round(meta["_ops"] * 1000),
                     "params_M": round(meta["num_params"] / 1e6, 2)}
    return out


register_family(Family("torchvision_mobile", TorchvisionMobileConfig, "other mobile (torchvision)", "#55a868", "^",
                       role="reference", flops="traced",
                       models=lambda: {a: TorchvisionMobileConfig(a) for a in ARCHS}, published=published,
                       size_orders={"ShuffleNetV2": tuple(a for a in ARCHS if a.startswith("shufflenet")),
                                    "MnasNet": tuple(a for a in ARCHS if a.startswith("mnasnet"))}))
