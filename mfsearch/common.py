"""Leaf helpers every layer may import: the user-error type, one-line error text, the
command-line parser both CLIs share, budget/duration parsing and MAdds/parameter formatting,
and the guard that ends a worker process with its parent."""
from __future__ import annotations

import argparse
import math
import os
import re
import sys
import threading
import time


class UsageError(Exception):
    """Bad input the user can fix: a CLI prints the one-line message and exits with 2."""


def one_line(err: BaseException | str) -> str:
    """An exception (or text) as a single line, for messages that must stay one line."""
    text = err if isinstance(err, str) else (str(err) or type(err).__name__)
    return " ".join(text.split())


def exit_with_parent(parent: int, poll_s: float = 1.0) -> None:
    """Call first in a worker process, with the pid of the process that started it: the
    worker exits as soon as that one is gone (even if it went before this call). A killed
    study (SIGTERM or SIGKILL) otherwise leaves its workers training as orphans, each
    holding a core and slowing whatever runs next on the machine."""

    def watch() -> None:
        while os.getppid() == parent:   # an orphan is adopted by init or a subreaper
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad command line as one line and exit code 2, no usage dump."""

    def error(self, message: str) -> None:
        print(f"{self.prog}: error: {one_line(message)} (see --help)", file=sys.stderr)
        sys.exit(2)


_SUFFIX = {"": 1.0, "K": 1e3, "M": 1e6, "G": 1e9}


def parse_budget(text: str) -> float:
    """'150M', '150e6', '0.15G' -> multiply-adds."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMgG]?)\s*(?:FLOPs|MAdds)?\s*", str(text))
    if not m:
        raise UsageError(f"--budget {text!r} is not a number of multiply-adds; write e.g. 150M, 150e6 or 0.15G")
    value = float(m.group(1)) * _SUFFIX[m.group(2).upper()]
    if not math.isfinite(value) or value <= 0:
        raise UsageError(f"--budget {text!r} must be positive; write e.g. 150M")
    if value < 1e5:
        raise UsageError(f"--budget {text!r} is {value:.0f} multiply-adds; did you mean {text}M?")
    return value


def parse_params(text: str | None) -> float | None:
    """'5M', '5e6', '5000000', '2.5M' -> parameters; None stays None."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMgG]?)\s*(?:params)?\s*", str(text))
    value = float(m.group(1)) * _SUFFIX[m.group(2).upper()] if m else float("nan")
    if not math.isfinite(value) or value <= 0:
        raise UsageError(f"--param-budget {text!r} is not a positive parameter count; write e.g. 5M, 5e6 or 5000000")
    if value < 1e4:   # every model of the spaces has far more: a forgotten suffix
        raise UsageError(f"--param-budget {text!r} is {value:.0f} parameters; did you mean {text}M?")
    return value


def format_params(value: float) -> str:
    """Parameters for people: 5.00M."""
    return f"{value / 1e6:.2f}M"


def parse_duration(text: str | None) -> float | None:
    """'30m', '2h', '90s', '45' (seconds) -> seconds; None stays None."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([smhd]?)\s*", str(text))
    if not m or float(m.group(1)) <= 0:
        raise UsageError(f"--timeout {text!r} is not a positive duration; write e.g. 30m, 2h or 90s")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def format_madds(value: float) -> str:
    """Multiply-adds for people: 152.0M, 1.23G."""
    return f"{value / 1e6:.1f}M" if value < 1e9 else f"{value / 1e9:.3g}G"
