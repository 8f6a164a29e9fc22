"""The Ray Tune backend: ASHA, Pareto, restore, and joining a separately started head."""
import os
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mfsearch.cli import main

REPO = Path(__file__).resolve().parents[1]
SPACE = str(REPO / "tests" / "data" / "tiny_space.yaml")
TINY = ["--epochs", "2", "--data-fraction", "0.02", "--test-fraction", "0.05", "--batch-size", "64",
        "--space", SPACE, "--budget", "20M", "--backend", "ray", "--no-baselines"]
RAY = str(Path(sys.executable).parent / "ray")


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
    df = pd.read_parquet(tmp_path / "runs" / "r" / "trials.parquet")
    assert len(df) == 3 and set(df["backend"]) == {"ray"}
    assert (df.loc[df["status"] == "complete", "flops"] <= 20e6).all()
    assert _run(tmp_path, *args) == 0  # same name: restored, nothing retrained or lost
    assert "restoring" in capsys.readouterr().out
    again = pd.read_parquet(tmp_path / "runs" / "r" / "trials.parquet")
    assert sorted(again["config"]) == sorted(df["config"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_join_a_ray_head_started_separately(tmp_path):
    import ray
    ray.shutdown()
    port = _free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    subprocess.run([RAY, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
                    "--include-dashboard=false", "--disable-usage-stats"], check=True, env=env,
                   capture_output=True, timeout=120)
    try:
        r = subprocess.run([sys.executable, str(REPO / "search.py"), "--out", str(tmp_path / "runs"), *TINY,
                            "--trials", "2", "--address", f"127.0.0.1:{port}", "--name", "cluster"],
                           capture_output=True, text=True, env=env, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        df = pd.read_parquet(tmp_path / "runs" / "cluster" / "trials.parquet")
        # both trials ran on the head; ASHA may stop the weaker one after its first epoch
        assert len(df) == 2 and df["status"].isin(["complete", "pruned"]).all() and (df["status"] == "complete").any()
    finally:
        subprocess.run([RAY, "stop", "--force"], env=env, capture_output=True, timeout=120)
