"""The clock a run's times are recorded on leaves out the time the process was stopped."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mfsearch import clock

# A child that reads the clock across `span` seconds of wall time, with a short gap threshold
# so that the test can stop it briefly.
CHILD = """
import importlib.util, sys, time
spec = importlib.util.spec_from_file_location("clock", {path!r})   # the module alone: no torch to import
clock = importlib.util.module_from_spec(spec)
spec.loader.exec_module(clock)
clock.BEAT_S, clock.GAP_S = 0.05, 0.5
a, w = clock.active_seconds(), time.perf_counter()
print("ready", flush=True)
while time.perf_counter() - w < {span}:
    time.sleep(0.01)
print(clock.active_seconds() - a, time.perf_counter() - w, flush=True)
"""


def _run_child(stop_s: float) -> tuple[float, float]:
    code = CHILD.format(span=2.5, path=str(Path(clock.__file__)))
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    if stop_s:
        time.sleep(0.3)
        os.kill(child.pid, signal.SIGSTOP)
        time.sleep(stop_s)
        os.kill(child.pid, signal.SIGCONT)
    active, wall = map(float, child.stdout.readline().split())
    assert child.wait(timeout=30) == 0
    return active, wall


@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="needs POSIX job control")
def test_a_stopped_process_leaves_the_stop_out_of_its_times():
    active, wall = _run_child(stop_s=1.5)
    assert wall >= 2.5
    assert 1.3 < wall - active < 1.7      # the 1.5 s stop, to within the clock's beat
    active, wall = _run_child(stop_s=0)
    assert wall - active < 0.2            # a running process loses nothing
