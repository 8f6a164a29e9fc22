"""A study file read and cut to one size: the rules every study kind shares."""
from __future__ import annotations

from pathlib import Path

import yaml

from ..common import UsageError


def read_study_file(path: str | Path) -> dict:
    """A study file's YAML mapping; a missing or unparsable file is a one-line UsageError."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"experiment file {path} not found; see experiments/ for the studies provided")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UsageError(f"experiment file {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise UsageError(f"experiment file {path} is not a mapping of study keys")
    return raw


# a size's entry for these replaces the study's instead of merging into it
REPLACED_WHOLE = {"variants", "protocols", "sample", "search", "paper", "datasets"}


def merge_spec(base: dict, over: dict) -> dict:
    """A size's overrides over the study's keys (nested dicts merge, REPLACED_WHOLE keys are replaced)."""
    out = dict(base)
    for k, v in over.items():
        nested = isinstance(v, dict) and isinstance(out.get(k), dict) and k not in REPLACED_WHOLE
        out[k] = merge_spec(out[k], v) if nested else v
    return out


def sized_spec(path: Path, raw: dict, size: str, keys: set[str]) -> dict:
    """The file's keys with size `size`'s overrides merged in; unknown keys and sizes are refused."""
    unknown = set(raw) - keys
    if unknown:
        raise UsageError(f"experiment file {path}: unknown keys {sorted(unknown)}")
    sizes = raw.get("sizes") or {}
    if size not in sizes:
        raise UsageError(f"experiment {path.stem} has no size {size!r}; choose one of {', '.join(sizes) or 'none'}")
    return merge_spec({k: v for k, v in raw.items() if k != "sizes"}, sizes[size] or {})
