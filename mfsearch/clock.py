"""A clock for the times a run records: `active_seconds()` is `time.perf_counter()` less the
time this process spent stopped (SIGSTOP, Ctrl-Z). A study paused while something else is
timed on the machine (as the house asks) would otherwise record the pause as training time,
and its throughput and ETA with it.

The kernel keeps no count of stopped time, so a daemon thread wakes every `BEAT_S` and
takes any gap over `GAP_S` between two of its wake-ups as a stop. `GAP_S` is far above any
delay a busy scheduler gives a sleeping thread, and a pause shorter than it is not worth
leaving out. The reader checks the gap too, so a read made just after a resume, before the
thread has woken, already leaves the pause out.
"""
from __future__ import annotations

import os
import threading
import time

BEAT_S = 0.5
GAP_S = 10.0


class _StopWatch:
    """Counts this process's stopped seconds; one per process (a forked child starts its own)."""

    def __init__(self, beat_s: float, gap_s: float) -> None:
        self.beat_s, self.gap_s = beat_s, gap_s
        self.pid = os.getpid()
        self.stopped = 0.0
        self.last = time.perf_counter()
        self.lock = threading.Lock()
        threading.Thread(target=self._run, name="stop-watch", daemon=True).start()

    def tick(self) -> float:
        """Count a gap since the last tick as stopped time; return the active time now."""
        with self.lock:
            now = time.perf_counter()
            if now - self.last > self.gap_s:
                self.stopped += now - self.last - self.beat_s
            self.last = now
            return now - self.stopped

    def _run(self) -> None:
        while True:
            time.sleep(self.beat_s)
            self.tick()


_watch: _StopWatch | None = None
_start_lock = threading.Lock()


def active_seconds() -> float:
    """Seconds on a monotonic clock that stands still while this process is stopped: only
    differences mean anything, as with `time.perf_counter()`."""
    global _watch
    with _start_lock:
        if _watch is None or _watch.pid != os.getpid():
            _watch = _StopWatch(BEAT_S, GAP_S)
    return _watch.tick()
