"""Rows appended one JSON line each as they finish (a study's rows.jsonl, a search's
trained.jsonl and confirm.jsonl), read back to resume: the one reader and its one rule.

A kill can tear only the line being written, the last one: a torn or unparsable LAST line
is skipped with a warning on stderr, so its run is simply produced again (and
`append_rows` cuts it off first, so the next row does not glue onto it). An unreadable line
before the last was not torn by a kill: that file was damaged, which a resume must not
paper over, so it is a one-line UsageError naming the file and the line.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..common import UsageError

Row = dict[str, Any]


def _parse(line: str) -> Row | None:
    try:
        row = json.loads(line)
    except ValueError:
        return None
    return row if isinstance(row, dict) else None


def numbered_rows(path: Path) -> list[tuple[int, Row]]:
    """(line number, row) for every row of `path`; [] when there is no file yet."""
    path = Path(path)
    if not path.is_file():
        return []
    lines = path.read_text().splitlines()
    last = max((n for n, line in enumerate(lines, 1) if line.strip()), default=0)
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        row = _parse(line)
        if row is not None:
            out.append((n, row))
        elif n == last:
            print(f"warning: {path} line {n} is torn (a run stopped while writing it); skipped, it is produced "
                  "again", file=sys.stderr)
        else:
            raise UsageError(f"{path} line {n} is unreadable; delete that line to redo its run")
    return out


def read_rows(path: Path) -> list[Row]:
    return [row for _, row in numbered_rows(path)]


def keyed_rows(path: Path, key: Callable[[Row], Hashable]) -> dict[Hashable, Row]:
    """The rows of `path` by `key(row)` (a later row of the same key wins); a row lacking
    what the key reads is unreadable too."""
    out = {}
    for n, row in numbered_rows(path):
        try:
            out[key(row)] = row
        except (KeyError, TypeError):
            raise UsageError(f"{path} line {n} is unreadable (not a row of this file); delete that line to redo "
                             "its run") from None
    return out


def drop_torn_tail(path: Path) -> None:
    """End the file on a line break so appending starts a line of its own: a last line
    without one is cut off when torn (a kill mid-write), completed when whole. Call it only
    while no other writer appends."""
    path = Path(path)
    if not path.is_file():
        return
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return
    cut = data.rfind(b"\n") + 1
    with path.open("r+b") as f:
        if _parse(data[cut:].decode(errors="replace")) is None:
            f.truncate(cut)
        else:
            f.seek(0, 2)
            f.write(b"\n")


def append_row(path: Path, row: Row) -> None:
    """One row as one short write with O_APPEND: concurrent writers do not interleave lines."""
    with Path(path).open("a") as f:
        f.write(json.dumps(row) + "\n")


@contextmanager
def append_rows(path: Path) -> Iterator[Callable[[Row], None]]:
    """A resumable loop's sink: the torn tail cut off, then each row written and flushed as
    it finishes (a kill loses at most the row being written)."""
    drop_torn_tail(path)
    with Path(path).open("a") as sink:
        def write(row: Row) -> None:
            sink.write(json.dumps(row) + "\n")
            sink.flush()
        yield write
