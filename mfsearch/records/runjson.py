"""Run folders and their run.json: the one place that writes it (atomically), reads it
and tells a search run from a study. Search, studies and analysis all go through here.

A search run's run.json holds `settings` (and `status`); a study's holds `study` and its
`kind` (the registered study kind that runs and analyses it, see mfsearch.studies); a
study made of searches (`budgets`) also lists them under `searches`. Both carry the
environment (library versions, git commit, host) for reproduction.
"""
from __future__ import annotations

import datetime as dt
import functools
import json
import os
import platform
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from .atomic import write_text_atomically

RUN_JSON = "run.json"


def environment() -> dict[str, Any]:
    """Library versions, machine and git commit, so a run can be reproduced."""
    versions = {"python": sys.version.split()[0]}
    for dist in ("torch", "torchvision", "optuna", "pandas", "ray", "fvcore", "mfsearch"):
        try:
            versions[dist] = version(dist)
        except PackageNotFoundError:
            versions[dist] = "source" if dist == "mfsearch" else None
    commit, dirty = _git_state()
    return {"versions": versions, "git_commit": commit, "git_dirty": dirty, "host": platform.node(),
            "cpus": os.cpu_count(), "command": sys.argv}


@functools.cache
def _git_state() -> tuple[str | None, bool | None]:
    """The checkout's commit and whether it had local changes, read once per process: a
    study's searches start hours apart, and each should record the code the process
    started with, not a commit checked out under it since."""
    repo = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5).stdout.strip() or None
        dirty = bool(subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True, timeout=5).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit, dirty


def write_run_json(folder: Path, payload: dict) -> Path:
    """Write run.json through a temporary file and a rename: never a torn file."""
    return write_text_atomically(Path(folder) / RUN_JSON, json.dumps(payload, indent=2, default=str))


def write_study_json(folder: Path, payload: dict) -> Path:
    """A study's run.json: `payload` plus the first start (kept across resumes), this run's
    start and the environment."""
    now = dt.datetime.now().isoformat(timespec="seconds")
    try:
        started = (read_run_json(folder) or {}).get("started", now)
    except ValueError:
        started = now
    return write_run_json(folder, {**payload, "started": started, "last_run": now, **environment()})


def read_run_json(folder: Path) -> dict | None:
    """run.json's content; None when the folder has none; ValueError when unreadable."""
    path = Path(folder) / RUN_JSON
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} is unreadable ({type(exc).__name__})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path} is not a JSON object")
    return meta


def folder_kind(folder: Path) -> str | None:
    """'search', 'study', or None (no readable run.json)."""
    try:
        meta = read_run_json(folder)
    except ValueError:
        return None
    if meta is None:
        return None
    return "study" if "study" in meta else "search" if "settings" in meta else None


def is_study_dir(folder: Path) -> bool:
    return folder_kind(Path(folder)) == "study"
