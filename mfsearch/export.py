"""ONNX export of any architecture: `export_onnx(name_or_config_or_module, path)`, and
`load_target` for `mfsearch export RUN_OR_NAME [--out FILE] [--resolution PX]`.

A run folder exports its `best.json` architecture, with the trained weights of `best.pt`
when the run kept them (then at the class count it was trained with). Every export is
checked with `onnx.checker` and run once in ONNX Runtime against PyTorch (eval mode).
With `scope_names`, every node is renamed `MODULE_PATH/NAME` from the exporter's scope
metadata, so that names in ONNX Runtime's profiles and in graph viewers say which module
an operation came from (mfsearch.profile reads them).
"""
from __future__ import annotations

import ast
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .common import UsageError, one_line
from .models import config_from_dict, create_model, get_config
from .models.checkpoint import load_checkpoint

TOLERANCE = 1e-4   # max abs difference of the logits allowed between ONNX Runtime and PyTorch
SCOPES = "pkg.torch.onnx.name_scopes"   # the dynamo exporter's per-node metadata: module paths, then the op


def _module(target: Any, num_classes: int) -> nn.Module:
    if isinstance(target, nn.Module):
        return target
    return create_model(get_config(target), num_classes=num_classes)


def export_onnx(target: Any, path: str | Path, resolution: int | None = None, num_classes: int = 1000,
                dynamic_batch: bool = True, check: bool = True, scope_names: bool = False) -> Path:
    """Export a registered name, config, best.json path or module to `path` (eval mode,
    one input `images`: batch x 3 x R x R, R the design's resolution unless given). With
    `check`, the file passes `onnx.checker` and ONNX Runtime reproduces PyTorch's outputs
    within TOLERANCE, or ValueError says by how much it does not. With `scope_names`, node
    names start with their module's path (`name_nodes_by_scope`)."""
    model = _module(target, num_classes).eval()
    res = resolution or getattr(getattr(model, "config", None), "resolution", 224)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # a batch of 2: an example of size 1 would be specialised to a fixed batch of 1
    x = torch.randn(2 if dynamic_batch else 1, 3, res, res, generator=torch.Generator().manual_seed(0))
    shapes = ({0: torch.export.Dim("batch", min=1, max=4096)},) if dynamic_batch else None
    with warnings.catch_warnings(), _quiet():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path), dynamo=True, dynamic_shapes=shapes, input_names=["images"],
                          output_names=["logits"], verbose=False)
    if scope_names:
        name_nodes_by_scope(path)
    if check:
        check_export(model, path, x)
    return path


def node_scope(node: Any) -> str | None:
    """The path of the innermost module an exported node came from ('' for the root's own
    operations), or None where the exporter left no scope (nodes its optimiser added)."""
    meta = {p.key: p.value for p in node.metadata_props}
    if SCOPES not in meta:
        return None
    modules = [s for s in ast.literal_eval(meta[SCOPES])[:-1] if s]   # the last entry is the op itself
    return modules[-1] if modules else ""


def name_nodes_by_scope(path: Path) -> Path:
    """Rename every node of an exported file `SCOPE/NAME` (an unscoped node: `/NAME`); node
    names stay unique since the old names were. The graph computes the same."""
    import onnx

    model = onnx.load(str(path))
    for node in model.graph.node:
        node.name = f"{node_scope(node) or ''}/{node.name}"
    onnx.save(model, str(path))
    return path


class _quiet:
    """The exporter logs each of its steps at INFO; a search exporting many models wants none."""

    def __enter__(self):
        self.levels = {n: logging.getLogger(n).level for n in ("torch.onnx", "torch.export", "onnxscript")}
        for n in self.levels:
            logging.getLogger(n).setLevel(logging.ERROR)

    def __exit__(self, *exc):
        for n, level in self.levels.items():
            logging.getLogger(n).setLevel(level)


def check_export(model: nn.Module, path: Path, x: torch.Tensor) -> float:
    """onnx.checker, then the max abs difference between ONNX Runtime and PyTorch on `x`."""
    import onnx  # checking loads onnx and ONNX Runtime; importing mfsearch does not
    import onnxruntime as ort

    onnx.checker.check_model(str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        want = model(x).numpy()
    diff = float(abs(got - want).max())
    if not diff <= TOLERANCE:
        raise ValueError(f"ONNX Runtime differs from PyTorch by {diff:.2e} (max abs) on {path}, over {TOLERANCE:g}")
    return diff


def load_target(target: str) -> tuple[nn.Module, str]:
    """A run folder (best.json, with best.pt's weights when present), a checkpoint, a JSON
    config or a registered name; returns the module and a description."""
    p = Path(target)
    if p.is_dir():
        if (p / "best.pt").is_file():
            return load_checkpoint(p / "best.pt"), f"{p}/best.pt (trained weights)"
        if (p / "best.json").is_file():
            cfg = config_from_dict(json.loads((p / "best.json").read_text())["config"])
            return create_model(cfg), f"{p}/best.json (architecture only: the run kept no weights)"
        raise UsageError(f"{p} holds neither best.pt nor best.json; pass a finished run folder or a model name")
    if p.suffix == ".pt":
        try:
            return load_checkpoint(p), f"{p} (trained weights)"
        except (FileNotFoundError, ValueError) as exc:
            raise UsageError(str(exc)) from None
    try:
        return create_model(target), f"{target} (untrained)"
    except (KeyError, ValueError, FileNotFoundError) as exc:
        raise UsageError(f"cannot export {target!r}: {one_line(exc)}") from None
