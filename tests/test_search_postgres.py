"""Optuna workers sharing a study in a real PostgreSQL server (started here on loopback).

Without a server binary the test skips, except under CI=true (set by .ci/run, which
installs the server), where it fails.
"""

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from mfsearch.cli.search import main

REPO = Path(__file__).resolve().parents[1]
SPACE = str(REPO / "tests" / "data" / "tiny_space.yaml")


def find_initdb() -> str | None:
    """initdb on PATH, else the newest Debian/Ubuntu server (/usr/lib/postgresql/<major>/bin)."""
    found = shutil.which("initdb")
    if found:
        return found
    candidates = [p for p in Path("/usr/lib/postgresql").glob("*/bin/initdb") if p.parent.parent.name.isdigit()]
    return str(max(candidates, key=lambda p: int(p.parent.parent.name))) if candidates else None


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="module")
def postgres_url():
    initdb = find_initdb()
    if initdb is None:
        why = "no PostgreSQL server (initdb) on PATH or under /usr/lib/postgresql/*/bin"
        if os.environ.get("CI", "").lower() == "true":  # .ci/run installs one: its absence there is a failure
            pytest.fail(f"{why}, and CI=true: install the distribution's 'postgresql' package")
        pytest.skip(why)
    bindir = Path(initdb).resolve().parent
    root = Path(tempfile.mkdtemp(prefix="mfsearch-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run(_as_postgres([initdb, "-D", str(data), "--auth=trust", "-U", "postgres"]), check=True,
                   capture_output=True, timeout=120)
    subprocess.run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(root / "log"), "-o",
                                 f"-p {port} -k {root} -c listen_addresses=127.0.0.1", "start"]),
                   check=True, capture_output=True, timeout=120)
    try:
        subprocess.run(_as_postgres([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "optuna"]),
                       check=True, capture_output=True, timeout=60)
        yield f"postgresql://postgres@127.0.0.1:{port}/optuna"
    finally:
        subprocess.run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]),
                       capture_output=True, timeout=120)
        shutil.rmtree(root, ignore_errors=True)


def test_two_workers_share_a_postgres_study(tmp_path, postgres_url):
    args = ["--out", str(tmp_path / "runs"), "--epochs", "2", "--data-fraction", "0.02", "--test-fraction", "0.05",
            "--batch-size", "64", "--min-steps", "0", "--band", "0", "--space", SPACE, "--budget", "20M",
            "--trials", "4", "--workers", "2", "--threads", "1", "--no-baselines", "--storage", postgres_url,
            "--name", "pg"]
    assert main(args) == 0
    df = pd.read_parquet(tmp_path / "runs" / "pg" / "trials.parquet")
    assert len(df) >= 4 and set(df["trial_id"]) == set(range(len(df)))
    assert (df["status"] == "complete").any(), df.filter(["status", "error"])
    assert not (df["status"] == "failed").any(), df.filter(["status", "error"])
    import optuna
    study = optuna.load_study(study_name="pg", storage=postgres_url)
    assert len([t for t in study.trials if t.state.is_finished()]) == len(df)


def test_unreachable_database_is_a_one_line_error(tmp_path, capsys):
    code = main(["--out", str(tmp_path / "runs"), "--budget", "20M", "--space", SPACE,
                 "--storage", "postgresql://postgres@127.0.0.1:1/none", "--name", "x"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "--storage" in err
    assert not (tmp_path / "runs" / "x").exists()
