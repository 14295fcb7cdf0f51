"""The on-disk log: segment files, line reading, and the signed head.

Segments are ``segment-<n:06d>-<YYYYMMDD>.jsonl`` under ``$SAHAYAK_HOME/provenance/``;
the counter comes first so name order is write order. ``HEAD.json`` holds the latest
signed checkpoint envelope plus an (unsigned) resume hint: where it sits and the Merkle
frontier, so a restart does not rehash the whole log, and so a verifier can tell that
whole lines were cut from the end of the log.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from app.core.fsutil import write_atomic

SEGMENT_RE = re.compile(r"^segment-(\d{6})-(\d{8})\.jsonl$")
HEAD_NAME = "HEAD.json"


@dataclass
class Line:
    """One line of a segment: 1-based number, bytes without the newline, byte span."""

    number: int
    raw: bytes
    start: int
    end: int  # offset just past the newline (or past the data for an unterminated tail)
    complete: bool  # ended with a newline


def list_segments(folder: Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if SEGMENT_RE.match(p.name))


def segment_name(counter: int, day: str) -> str:
    return f"segment-{counter:06d}-{day}.jsonl"


def segment_counter(path: Path) -> int:
    m = SEGMENT_RE.match(Path(path).name)
    return int(m.group(1)) if m else 0


def read_lines(path: Path, start: int = 0, first_number: int = 1) -> Iterator[Line]:
    """Lines of a file from byte ``start``; the last one may be unterminated (torn)."""
    with open(path, "rb") as fh:
        fh.seek(start)
        data = fh.read()
    pos = 0
    number = first_number
    while pos < len(data):
        nl = data.find(b"\n", pos)
        if nl < 0:
            yield Line(number, data[pos:], start + pos, start + len(data), False)
            return
        yield Line(number, data[pos:nl], start + pos, start + nl + 1, True)
        pos = nl + 1
        number += 1


def read_head(folder: Path) -> dict[str, Any] | None:
    path = Path(folder) / HEAD_NAME
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def write_head(folder: Path, head: dict[str, Any]) -> None:
    """Atomically and durably replace HEAD.json (write, fsync, rename, fsync the folder)."""
    write_atomic(Path(folder) / HEAD_NAME, json.dumps(head, sort_keys=True), durable=True)
