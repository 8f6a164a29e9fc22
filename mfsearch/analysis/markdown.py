"""Markdown helpers every report uses: tables and numbers that may be missing."""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def table(header: list[str], rows: Iterable[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + \
        ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]


def num(v: float | None, fmt: str = ".2f", missing: str = "n/a") -> str:
    return missing if v is None or not np.isfinite(v) else format(v, fmt)


def interval(v: tuple[float, float] | None, fmt: str = "+.2f", missing: str = "n/a") -> str:
    return missing if v is None or not np.all(np.isfinite(v)) else f"[{format(v[0], fmt)}, {format(v[1], fmt)}]"
