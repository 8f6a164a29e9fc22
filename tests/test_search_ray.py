"""The Ray Tune backend: ASHA, Pareto, restore, and joining a separately started head."""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
from conftest import stop_process

from mfsearch.cli.search import main

REPO = Path(__file__).resolve().parents[1]
SPACE = str(REPO / "tests" / "data" / "tiny_space.yaml")
TINY = ["--epochs", "2", "--data-fraction", "0.02", "--test-fraction", "0.05", "--batch-size", "64",
        "--min-steps", "0", "--band", "0", "--space", SPACE, "--budget", "20M", "--backend", "ray", "--no-baselines"]
RAY = str(Path(sys.executable).parent / "ray")
# one worker runs every Ray test, one after another: two local clusters at once would fight for the cores
pytestmark = pytest.mark.xdist_group("ray")


@pytest.fixture(scope="module", autouse=True)
def ray_shutdown():
    os.environ["RAY_AUTH_MODE"] = "disabled"
    yield
    import ray
    ray.shutdown()


def _run(tmp_path, *args):
    return main(["--out", str(tmp_path / "runs"), *TINY, *args])


@pytest.mark.parametrize("objective", ["accuracy", "pareto"])
def test_ray_end_to_end_and_restore(tmp_path, objective, capsys):
    args = ["--trials", "3", "--workers", "2", "--threads", "1", "--objective", objective, "--name", "r"]
    assert _run(tmp_path, *args) == 0
    assert re.search(r"trial \S+: epoch 1/2: top-1 [0-9.]+%", capsys.readouterr().out)   # in-trial progress
    df = pd.read_parquet(tmp_path / "runs" / "r" / "trials.parquet")
    assert len(df) == 3 and set(df["backend"]) == {"ray"}
    assert (df["status"] == "complete").any(), df.filter(["status", "error"])
    assert not (df["status"] == "failed").any(), df.filter(["status", "error"])
    assert (df.loc[df["status"] == "complete", "flops"] <= 20e6).all()
    assert _run(tmp_path, *args) == 0  # same name: restored, nothing retrained or lost
    assert "restoring" in capsys.readouterr().out
    again = pd.read_parquet(tmp_path / "runs" / "r" / "trials.parquet")
    assert sorted(again["config"]) == sorted(df["config"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _session_pids(pgid: int, marker: str) -> list[int]:
    """Live processes of one head: in its process group, or naming its own temp dir."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue  # already dead, waiting to be reaped
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if os.getpgid(int(entry.name)) == pgid or marker in cmdline:
                pids.append(int(entry.name))
        except (OSError, ProcessLookupError):
            continue
    return pids


@contextmanager
def ray_head(port: int, env: dict):
    """A Ray head of this test's own: `ray start --block` in a new session with its own
    temp dir. Stopping it touches only that head (never `ray stop`, which stops every
    Ray on the host): SIGTERM to the blocking `ray start`, which shuts down what it
    started, then SIGKILL to whatever of its group or temp dir outlived that."""
    temp_dir = tempfile.mkdtemp(prefix="mfsearch-ray-")  # short: Ray's socket paths have a length limit
    log = open(Path(temp_dir) / "ray-start.log", "wb")
    proc = subprocess.Popen([RAY, "start", "--head", "--block", f"--temp-dir={temp_dir}", "--node-ip-address=127.0.0.1",
                             f"--port={port}", "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 120
        while not (Path(temp_dir) / "ray_current_cluster").exists():
            assert proc.poll() is None, (Path(temp_dir) / "ray-start.log").read_text()[-2000:]
            assert time.time() < deadline, "the Ray head did not start within 120 s"
            time.sleep(0.5)
        yield proc, temp_dir
    finally:
        stop_process(proc, 60)
        for _ in range(20):
            left = _session_pids(proc.pid, temp_dir)
            if not left:
                break
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.5)
        log.close()
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_join_a_ray_head_started_separately(tmp_path):
    import ray
    ray.shutdown()
    port = _free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    with ray_head(port, env) as (head, temp_dir):
        r = subprocess.run([sys.executable, str(REPO / "search.py"), "--out", str(tmp_path / "runs"), *TINY,
                            "--trials", "2", "--address", f"127.0.0.1:{port}", "--name", "cluster"],
                           capture_output=True, text=True, env=env, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        df = pd.read_parquet(tmp_path / "runs" / "cluster" / "trials.parquet")
        # both trials ran on the head; ASHA may stop the weaker one after its first epoch
        assert len(df) == 2 and df["status"].isin(["complete", "pruned"]).all() and (df["status"] == "complete").any()
    assert head.returncode is not None and not _session_pids(head.pid, temp_dir)  # the head is gone
