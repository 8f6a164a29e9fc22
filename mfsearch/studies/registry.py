"""Study kinds by name: each kind's module registers how it loads a study file, runs it
and analyses its folder. A study's kind is written in its run.json when it runs and looked
up by name from then on; `kind_of` is the one place a kind is decided for a file (or an
old run folder) that does not name one."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..common import UsageError
from ..records.runjson import read_run_json
from ..train import resolve_device
from .spec import read_study_file

Analysis = tuple[Path, list[Path], str]   # output folder, files written, headline


@dataclass(frozen=True)
class StudyKind:
    name: str
    load: Callable[[Path, dict, str], Any]          # (file, its YAML, size) -> a study with .kind
    run: Callable[..., Path]                        # (study, out, log, save_weights[, device=]) -> its run folder
    analyze: Callable[[Path, dict, Path], Analysis]  # (run folder, its run.json, output folder)
    workers: bool = False   # its run takes workers= and threads= (fixed trainings that can run side by side)
    cpu_only: bool = False  # its run trains on the CPU alone and takes no device=


KINDS: dict[str, StudyKind] = {}


def register(kind: StudyKind) -> StudyKind:
    KINDS[kind.name] = kind
    return kind


def kind_of(spec: dict) -> str:
    """A study file's kind, or an old run folder's from the spec its run.json keeps: the
    `kind` it names, else `budgets` for a file of searches (`search:`), else `variants`."""
    return str(spec.get("kind") or ("budgets" if "search" in spec else "variants"))


def get_kind(name: str) -> StudyKind:
    if name not in KINDS:
        raise UsageError(f"unknown study kind {name!r}; choose one of {', '.join(KINDS)}")
    return KINDS[name]


def load_study(path: str | Path, size: str = "smoke") -> Any:
    """A study file checked and cut to `size`; every problem is a one-line UsageError."""
    raw = read_study_file(path)
    return get_kind(kind_of(raw)).load(Path(path), raw, size)


def run_study(study: Any, out: str | Path = "runs", log: Callable[[str], None] = print,
              save_weights: bool = False, workers: int = 1, threads: int | None = None,
              device: str = "cpu") -> Path:
    """Run (or resume) every part of `study` not done yet, its trainings `workers` at a time
    where its kind allows, on `device` (cpu, cuda, cuda:N, auto); returns its run folder."""
    kind, requested = get_kind(study.kind), device
    device = resolve_device(device)   # a CUDA device torch cannot see stops here, before anything is written
    if not kind.workers and workers != 1:
        raise UsageError(f"--workers runs a study's fixed trainings side by side; a {kind.name} study runs "
                         "searches or detectors one at a time (drop --workers)")
    if kind.cpu_only:
        if device != "cpu" and requested != "auto":
            raise UsageError(f"a {kind.name} study trains on the CPU only; drop --device")
        return kind.run(study, Path(out), log, save_weights)
    if not kind.workers:
        return kind.run(study, Path(out), log, save_weights, device=device)
    return kind.run(study, Path(out), log, save_weights, workers=workers, threads=threads, device=device)


def recorded_kind(meta: dict) -> str:
    """A study folder's kind: what its run.json says, or for a folder written before kinds
    were recorded, what `kind_of` makes of the spec it keeps."""
    return str(meta.get("kind") or kind_of(meta.get("spec") or {}))


def analyze_study(path: str | Path, out: str | Path | None = None) -> Analysis:
    """Figures and report.md of one study folder, by its kind; returns (folder, files, headline)."""
    path = Path(path)
    try:
        meta = read_run_json(path) or {}
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return get_kind(recorded_kind(meta)).analyze(path, meta, Path(out) if out else path / "analysis")
