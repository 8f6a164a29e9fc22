"""Mobile-Former (Chen et al., CVPR 2022) built from a `MobileFormerConfig`.

Layout choices made for CPU training speed without changing the maths:
tokens are kept batch-first (B, M, d); the two Linear layers that read the same
tokens in a bridge are one Linear with concatenated weights; the dynamic-ReLU
coefficient MLPs of a block share one first layer; dynamic ReLU is computed
with dense element-wise ops in training and as max(a1*x, a2*x) in eval mode (fewer
ops to export and run); bridges read the feature map through views that work for
both NCHW and channels_last. Parameter counts and multiply-adds are unchanged.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn as nn
import torch.nn.functional as F

if TYPE_CHECKING:  # the config builds this module, so it is imported for annotations only
    from .config import MobileFormerConfig


def _slopes(x: torch.Tensor, coeffs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    b, c = x.shape[0], x.shape[1]
    s1, s2 = (s.view(b, c, 1, 1) for s in coeffs.split(c, dim=1))   # one Split in ONNX, not 2 Slice + 2 Squeeze
    return 2.0 * s1, 2.0 * s2 - 1.0   # (s1 - 0.5) * 2 + 1 in [0, 2]; (s2 - 0.5) * 2 in [-1, 1]


def dynamic_relu(x: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
    """y = max(a1*x, a2*x) per (sample, channel); `coeffs` is (B, 2C) of h_sigmoid outputs.

    Written as lo*x + (hi - lo)*relu(x) with hi/lo the larger/smaller coefficient:
    the same function, but dense element-wise ops instead of a broadcast max and its
    masked backward (7x faster forward+backward on CPU in channels_last).
    """
    a1, a2 = _slopes(x, coeffs)
    hi, lo = torch.maximum(a1, a2), torch.minimum(a1, a2)
    return torch.addcmul(x * lo, torch.relu(x), hi - lo)


def dynamic_relu_inference(x: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
    """The same y = max(a1*x, a2*x), written as it reads: without a backward to make fast, it
    exports to fewer ONNX nodes (no hi/lo; addcmul is two nodes in ONNX; no Relu, which
    ONNX Runtime ran in its blocked layout and copied back out) and reads the map 3 times,
    not 4: 8 nodes per activation instead of 15, and MF-151M's graph after ONNX Runtime's
    optimisations has 1044 nodes instead of 1168 (docs/latency.md). Equal to
    `dynamic_relu` within float rounding (tests/test_models.py)."""
    a1, a2 = _slopes(x, coeffs)
    return torch.maximum(x * a1, x * a2)


class DynamicReLU(nn.Module):
    """Dynamic ReLU as a module without parameters, so that its operations carry a module
    path in traces and ONNX exports (mfsearch.profile attributes time by it); in training
    the form with the fast backward, in eval mode (inference, export) the one with fewer ops."""

    def forward(self, x: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
        return dynamic_relu(x, coeffs) if self.training else dynamic_relu_inference(x, coeffs)


class ChannelShuffle(nn.Module):
    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        nhwc = x.permute(0, 2, 3, 1)
        if x.is_contiguous() or not nhwc.is_contiguous():
            return F.channel_shuffle(x.contiguous(), self.groups)
        # channels_last (CPU training): shuffle the last axis of the NHWC view, one copy each way
        # instead of three (to contiguous, shuffle, back); the same values bit for bit
        g = self.groups
        return nhwc.reshape(b, h, w, g, c // g).transpose(3, 4).reshape(b, h, w, c).permute(0, 3, 1, 2)


def conv_bn(cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout))


def shuffle_or_id(groups: int) -> nn.Module:
    return ChannelShuffle(groups) if groups > 1 else nn.Identity()


class CoeffMLPs(nn.Module):
    """The dynamic-ReLU coefficient MLPs of one block, read off the first token of z.

    Each activation has its own two-layer MLP (d -> d/4 -> 2C); the first layers
    are stacked into one Linear since they read the same input.
    """

    def __init__(self, token_dim: int, widths: list[int]):
        super().__init__()
        self.squeeze = token_dim // 4
        self.first = nn.Linear(token_dim, self.squeeze * len(widths))
        self.second = nn.ModuleList(nn.Linear(self.squeeze, 2 * w) for w in widths)

    def forward(self, z: torch.Tensor) -> list[torch.Tensor]:
        hidden = F.relu(self.first(z[:, 0])).split(self.squeeze, dim=-1)
        return [F.hardsigmoid(lin(h)) for lin, h in zip(self.second, hidden)]


class MobileToFormer(nn.Module):
    """Tokens attend to the map; the map is key and value with no projection."""

    def __init__(self, channels: int, token_dim: int, heads: int):
        super().__init__()
        self.heads, self.channels = heads, channels
        self.scale = (channels // heads) ** -0.5
        self.q_gate = nn.Linear(token_dim, 2 * channels)  # query and gate, both read z
        self.proj = nn.Linear(channels, token_dim)
        self.norm = nn.LayerNorm(token_dim)
        self.capture: list | None = None   # a list to append the weights to (see models/attention.py)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[0], x.shape[1]
        m = z.shape[1]
        q, gate = self.q_gate(z).split(c, dim=-1)
        q = q.view(b, m, self.heads, c // self.heads).transpose(1, 2)       # B h M C/h
        k = x.flatten(2).unflatten(1, (self.heads, c // self.heads))        # B h C/h L
        attn = torch.softmax(torch.matmul(q, k) * self.scale, dim=-1)       # B h M L
        if self.capture is not None:
            self.capture.append((attn.detach(), tuple(x.shape[2:])))
        out = torch.matmul(attn, k.transpose(-1, -2))                       # B h M C/h
        out = out.transpose(1, 2).reshape(b, m, c) * (2.0 * F.hardsigmoid(gate))
        return self.norm(z + self.proj(out))


class FormerToMobile(nn.Module):
    """The map attends to the tokens; the map is the query with no projection."""

    def __init__(self, channels: int, token_dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.scale = (channels // heads) ** -0.5
        self.kv = nn.Linear(token_dim, 2 * channels)  # key and value, both read z
        self.capture: list | None = None

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        b, c, hgt, wid = x.shape
        m, h = z.shape[1], self.heads
        k, v = self.kv(z).view(b, m, 2, h, c // h).permute(2, 0, 3, 1, 4).unbind(0)  # B h M C/h
        q = x.flatten(2).unflatten(1, (h, c // h))                           # B h C/h L
        attn = torch.softmax(torch.matmul(q.transpose(-1, -2), k.transpose(-1, -2)) * self.scale, dim=-1)
        if self.capture is not None:                                         # B h L M
            self.capture.append((attn.detach(), (hgt, wid)))
        out = torch.matmul(attn, v)                                          # B h L C/h
        if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
            out = out.permute(0, 2, 1, 3).reshape(b, hgt, wid, c).permute(0, 3, 1, 2)
        else:
            out = out.permute(0, 1, 3, 2).reshape(b, c, hgt, wid)
        return x + out


class Former(nn.Module):
    """Post-norm transformer block on the tokens; keys and values are the tokens."""

    def __init__(self, token_dim: int, heads: int, ffn_expansion: int, use_ffn: bool):
        super().__init__()
        self.heads = heads
        self.scale = (token_dim // heads) ** -0.5
        self.q = nn.Linear(token_dim, token_dim)
        self.proj = nn.Linear(token_dim, token_dim)
        self.norm = nn.LayerNorm(token_dim)
        self.ffn = nn.Sequential(
            nn.Linear(token_dim, token_dim * ffn_expansion), nn.GELU(),
            nn.Linear(token_dim * ffn_expansion, token_dim)) if use_ffn else None
        self.ffn_norm = nn.LayerNorm(token_dim) if use_ffn else None
        self.capture: list | None = None

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        b, m, d = z.shape
        h = self.heads
        q = self.q(z).view(b, m, h, d // h).transpose(1, 2)                 # B h M d/h
        k = z.view(b, m, h, d // h).transpose(1, 2)
        attn = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * self.scale, dim=-1)
        if self.capture is not None:                                         # B h M M
            self.capture.append((attn.detach(), (m, m)))
        out = torch.matmul(attn, k).transpose(1, 2).reshape(b, m, d)
        z = self.norm(z + self.proj(out))
        if self.ffn is not None:
            z = self.ffn_norm(z + self.ffn(z))
        return z


class LiteBlock(nn.Module):
    """First row: depthwise 3x3 that expands by e1, ReLU6, pointwise projection."""

    def __init__(self, cin: int, cout: int, stride: int, e1: int, groups: int):
        super().__init__()
        self.dw = conv_bn(cin, cin * e1, 3, stride, groups=cin)
        self.shuffle = shuffle_or_id(cin if groups > 1 else 1)
        self.pw = conv_bn(cin * e1, cout, groups=groups)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor, z: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        out = self.pw(self.shuffle(F.relu6(self.dw(x))))
        return (out + x if self.residual else out), z


class MobileFormerBlock(nn.Module):
    """Mobile->Former, Former, Mobile sub-block (+ skip), Former->Mobile.

    `parts` is the row's (dynamic ReLU, bridges and Former, tokens) from
    `MobileFormerConfig.row_globals`: a block without bridges passes the tokens through, and one
    on `tokens` of the model's tokens runs its bridges and Former on the first `tokens` of them
    and passes the rest through (the first token, which the dynamic ReLU and the head read, is
    always among them).
    """

    def __init__(self, cfg: MobileFormerConfig, kind: str, cin: int, cout: int, stride: int,
                 e1: int, e2: int, parts: tuple[bool, bool, int]):
        super().__init__()
        g, d = cfg.group_num, cfg.token_dim
        self.kind = kind
        self.dynamic, bridged, tokens = parts
        self.split = tokens if bridged and tokens < cfg.tokens else None   # None: works on every token
        self.residual = stride == 1 and cin == cout
        if kind == "block":
            hidden = cin * e1
            self.conv1 = nn.Sequential(*conv_bn(cin, hidden, groups=g), shuffle_or_id(g))
            self.conv2 = conv_bn(hidden, hidden, 3, stride, groups=hidden)
            self.conv3 = nn.Sequential(*conv_bn(hidden, cout, groups=g), shuffle_or_id(g))
            act_widths = [hidden, hidden]
        else:  # "down": dw(stride, x e1) -> pw -> dw(x e2) -> pw, inner residual on the second half
            hidden1, hidden2 = cin * e1, cout * e2
            self.conv1 = nn.Sequential(*conv_bn(cin, hidden1, 3, stride, groups=cin),
                                       shuffle_or_id(cin if g > 1 else 1))
            self.conv2 = conv_bn(hidden1, cout, groups=g)
            self.conv3 = nn.Sequential(*conv_bn(cout, hidden2, 3, 1, groups=cout),
                                       shuffle_or_id(cout if g > 1 else 1))
            self.conv4 = conv_bn(hidden2, cout, groups=g)
            act_widths = [hidden1, hidden2]
        self.coeffs = CoeffMLPs(d, act_widths) if self.dynamic else None
        self.dyrelu = DynamicReLU() if self.dynamic else None   # no parameters: state_dict keys unchanged
        self.m2f = MobileToFormer(cin, d, cfg.bridge_heads) if bridged and cfg.mobile_to_former else None
        self.former = Former(d, cfg.former_heads, cfg.ffn_expansion, cfg.former_ffn) if bridged else None
        self.f2m = FormerToMobile(cout, d, cfg.bridge_heads) if bridged and cfg.former_to_mobile else None

    def _act(self, x: torch.Tensor, coeffs: list[torch.Tensor] | None, i: int) -> torch.Tensor:
        return self.dyrelu(x, coeffs[i]) if coeffs is not None else F.relu(x)

    def forward(self, x: torch.Tensor, z: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        part = z if self.split is None else z[:, :self.split]   # the tokens this block works on
        if self.m2f is not None:
            part = self.m2f(x, part)
        if self.former is not None:
            part = self.former(part)
        coeffs = self.coeffs(part) if self.coeffs is not None else None   # reads the first token
        if self.kind == "block":
            out = self._act(self.conv1(x), coeffs, 0)
            out = self._act(self.conv2(out), coeffs, 1)
            out = self.conv3(out)
        else:
            mid = self.conv2(self._act(self.conv1(x), coeffs, 0))
            out = mid + self.conv4(self._act(self.conv3(mid), coeffs, 1))
        if self.residual:
            out = out + x
        if self.f2m is not None:
            out = self.f2m(out, part)
        return out, part if self.split is None else torch.cat([part, z[:, self.split:]], dim=1)


class MobileFormerHead(nn.Module):
    """1x1 conv to `head_expansion` x channels (6 as published), pool, concat the first token, MLP classifier."""

    def __init__(self, cfg: MobileFormerConfig, cin: int, num_classes: int):
        super().__init__()
        g = cfg.group_num
        hidden = cin * cfg.head_expansion
        self.conv = nn.Sequential(shuffle_or_id(g), *conv_bn(cin, hidden, groups=g))
        in_fc = hidden + (cfg.token_dim if cfg.former else 0)
        self.fc = nn.Linear(in_fc, cfg.head_hidden)
        self.fc_norm = nn.BatchNorm1d(cfg.head_hidden)
        self.dropout = nn.Dropout(cfg.dropout)
        self.classifier = nn.Linear(cfg.head_hidden, num_classes)

    def forward(self, x: torch.Tensor, z: torch.Tensor | None) -> torch.Tensor:
        x = F.hardswish(F.adaptive_avg_pool2d(F.relu6(self.conv(x)), 1).flatten(1))
        if z is not None:
            x = torch.cat([x, z[:, 0]], dim=1)
        x = F.hardswish(self.fc_norm(self.fc(x)))
        return self.classifier(self.dropout(x))


class MobileFormer(nn.Module):
    def __init__(self, cfg: MobileFormerConfig, num_classes: int = 1000):
        super().__init__()
        self.config, self.num_classes = cfg, num_classes
        stem = cfg.stem_channels()
        self.stem = nn.Sequential(*conv_bn(3, stem, 3, 2), nn.ReLU6(inplace=True))
        self.tokens = nn.Parameter(torch.randn(cfg.tokens, cfg.token_dim)) if cfg.former else None
        blocks = []
        for (kind, cin, cout, stride, e1, e2), parts in zip(cfg.expanded_rows(), cfg.row_globals()):
            if kind == "lite":
                blocks.append(LiteBlock(cin, cout, stride, e1, cfg.group_num))
            else:
                blocks.append(MobileFormerBlock(cfg, kind, cin, cout, stride, e1, e2, parts))
        self.blocks = nn.ModuleList(blocks)
        last = cfg.last_channels()
        self.final_m2f = MobileToFormer(last, cfg.token_dim, cfg.bridge_heads) \
            if cfg.former and cfg.mobile_to_former else None
        self.head = MobileFormerHead(cfg, last, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.tokens.unsqueeze(0).expand(x.shape[0], -1, -1) if self.tokens is not None else None
        x = self.stem(x)
        for block in self.blocks:
            x, z = block(x, z)
        if self.final_m2f is not None:
            z = self.final_m2f(x, z)
        return self.head(x, z)
