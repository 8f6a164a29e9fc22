"""Zero-cost scores: rank architectures at initialisation from one minibatch, no training.

The cheap baselines any trained proxy has to beat (Abdelfattah et al., ICLR 2021;
Mellor et al., ICML 2021), plus the cost columns themselves:

- `madds`, `params`: the architecture's multiply-adds / parameters (1000-class head,
  its own resolution), i.e. "bigger is better".
- `synflow`: sum over parameters of |theta * dR/dtheta| where R is the sum of the
  outputs of the network with every parameter replaced by its absolute value, fed an
  all-ones input, in float64 and eval mode (BatchNorm then is a fixed affine map).
  Reported as log10, since the raw value spans hundreds of orders of magnitude.
- `grad_norm`: the sum of the L2 norms of every parameter's gradient of the
  cross-entropy loss on one training batch (train mode).
- `naswot`: log-determinant of K = C C^T + (1 - C)(1 - C)^T, where row i of C is the
  binary code of image i: for every call of an activation whose behaviour changes at 0
  (relu, relu6, hardtanh, and the relu inside Mobile-Former's dynamic ReLU, all with a
  kink there; hardswish and gelu, which pass from near 0 to near identity around it),
  whether each input element is positive. For dynamic ReLU this is the side of its
  kink, whatever its learned slopes.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

SCORES = ("madds", "params", "synflow", "grad_norm", "naswot")
# activations whose input sign marks the linear region a unit is in
_KINKED = {F.relu, torch.relu, F.relu6, F.hardswish, F.gelu, torch.relu_, F.hardtanh}


def zero_cost_score(name: str, model: nn.Module, loader, result) -> float:
    """`name`'s score for `model` (freshly initialised) on the first batch of `loader`."""
    if name == "madds":
        return float(result.flops)
    if name == "params":
        return float(result.params)
    x, y = next(iter(loader))
    return {"synflow": synflow, "grad_norm": grad_norm, "naswot": naswot}[name](model, x, y)


def synflow(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> float:
    model = model.double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.abs_()
    model.zero_grad(set_to_none=True)
    ones = torch.ones((1, *x.shape[1:]), dtype=torch.float64, device=x.device)
    model(ones).sum().backward()
    total = sum((p * p.grad).abs().sum().item() for p in model.parameters() if p.grad is not None)
    model.float()
    return math.log10(total) if total > 0 else float("-inf")


def grad_norm(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.train()
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    return sum(p.grad.norm().item() for p in model.parameters() if p.grad is not None)


class _Codes(TorchFunctionMode):
    """Records the sign pattern of the input of every kinked activation call."""

    def __init__(self) -> None:
        super().__init__()
        self.codes: list[torch.Tensor] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in _KINKED and args and isinstance(args[0], torch.Tensor):
            self.codes.append((args[0] > 0).flatten(1).to(torch.float64))
        return func(*args, **(kwargs or {}))


def naswot(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> float:
    model.train()  # BatchNorm normalises by the batch, as the network sees data in training
    recorder = _Codes()
    with torch.no_grad(), recorder:
        model(x)
    if not recorder.codes:
        raise ValueError("naswot found no piecewise-linear activation in this model")
    c = torch.cat(recorder.codes, dim=1)
    k = c @ c.T + (1 - c) @ (1 - c).T
    return torch.linalg.slogdet(k).logabsdet.item()
