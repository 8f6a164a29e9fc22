"""What must not move when the model or the space grows: every stored config rebuilds the same
model, and the default space draws the same stream for the same seed.

Both fixtures were recorded from commit e70e162 (before the per-stage row options and the
`mobile_former_cpu` space existed):
- `data/stored_configs.json`: for each distinct Mobile-Former config stored under docs/results
  (rows.jsonl and trials.csv), keyed by the first 16 hex digits of the SHA-256 of its JSON
  text, the closed-form MAdds, the parameter count and a digest of the state dict's names
  and shapes;
- `data/default_space_stream.json`: per seed 0..4, three `sample_params` draws, and the JSON
  of `sample(rng)`, `sample(rng, max_flops=150e6)` and `sample_in_band(rng, 150e6, 0.9)`
  drawn in that order from one generator.
"""
import csv
import hashlib
import json
import random
from pathlib import Path

import pytest
import torch

import mfsearch
from mfsearch.models import config_from_dict, create_model
from spaces import MobileFormerSpace

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def stored_configs() -> dict[str, dict]:
    """Each distinct Mobile-Former config dict stored in a results file, by its JSON text."""
    csv.field_size_limit(10 ** 9)
    found: dict[str, dict] = {}
    results = REPO / "docs" / "results"
    for path in sorted(results.rglob("rows.jsonl")) + sorted(results.rglob("*trials.csv")):
        with path.open() as f:
            rows = [json.loads(line) for line in f if line.strip()] if path.suffix == ".jsonl" \
                else list(csv.DictReader(f))
        for row in rows:
            cfg = row.get("config")
            if isinstance(cfg, str) and cfg.startswith("{"):
                cfg = json.loads(cfg)
            if isinstance(cfg, dict) and cfg.get("family", "mobile_former") == "mobile_former":
                found.setdefault(json.dumps(cfg, sort_keys=True), cfg)
    return found


def _params_and_state_dict(cfg) -> tuple[int, str]:
    """The parameter count and a digest of the state dict's names and shapes (built on the meta
    device: no weights are computed)."""
    with torch.device("meta"):
        model = create_model(cfg, num_classes=1000)
    shapes = ";".join(f"{k}:{tuple(v.shape)}" for k, v in model.state_dict().items())
    return sum(p.numel() for p in model.parameters()), _digest(shapes)


SWITCHES = ("mobile_to_former", "former_to_mobile", "dynamic_relu", "former_ffn", "former")


def test_every_stored_config_rebuilds_the_same_model():
    """Same JSON text and MAdds for every stored config; the same parameters and state-dict
    shapes for the ablations and a quarter of the rest (building on the meta device still
    takes ~0.1 s a model here)."""
    expected = json.loads((DATA / "stored_configs.json").read_text())
    configs = stored_configs()
    assert len(configs) >= len(expected) > 100
    for text, d in configs.items():
        key = _digest(text)
        if key not in expected:
            continue   # a row stored after the fixture was recorded
        cfg = config_from_dict(d)
        assert cfg.to_json() == text, "the stored JSON (and so the config's identity) changed"
        flops, params, state = expected.pop(key)
        assert mfsearch.estimate_flops(cfg) == flops, text
        if key[0] in "0123" or not all(getattr(cfg, s) for s in SWITCHES):
            assert _params_and_state_dict(cfg) == (params, state), text
    assert not expected, f"{len(expected)} recorded configs are no longer stored under docs/results"


@pytest.mark.parametrize("seed", range(5))
def test_default_space_draws_the_recorded_stream(seed):
    recorded = json.loads((DATA / "default_space_stream.json").read_text())[str(seed)]
    space = MobileFormerSpace()
    rng = random.Random(seed)
    assert [space.sample_params(rng) for _ in range(3)] == recorded["params"]
    rng = random.Random(seed)
    drawn = [space.sample(rng), space.sample(rng, max_flops=150e6), space.sample_in_band(rng, 150e6, 0.9)]
    assert [c.to_json() for c in drawn] == recorded["configs"]
