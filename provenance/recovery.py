"""Resuming the log after a restart: rebuild the chain state from disk, and find a torn tail.

On start (and after any write error) the writer re-reads the tail of the log. A last line
that is unterminated or unparseable is a *torn tail*: it is left exactly as it is, and
:func:`scan_tail` reports it (``ChainState.torn``) so the writer starts a new segment whose
first record is a ``torn_segment`` event chained to the last valid record. A damaged line
anywhere else raises :class:`ProvenanceError` instead of letting the writer append to a
log that no longer verifies.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from provenance.canonical import sha256_hex
from provenance.errors import ProvenanceError
from provenance.log import Line, list_segments, read_head, read_lines
from provenance.merkle import Frontier, leaf_hash
from provenance.records import GENESIS_HASH


class ChainState:
    """Where the chain stands: the next sequence number, last hash and Merkle frontier."""

    def __init__(self) -> None:
        self.seq = 0
        self.last_hash = GENESIS_HASH
        self.frontier = Frontier()
        self.segment: Path | None = None
        self.lines_in_segment = 0
        self.since_checkpoint = 0
        self.last_checkpoint: dict[str, Any] | None = None  # {"tree_size", "root_hash"}
        self.torn: dict[str, Any] | None = None  # torn tail found at the end of the log
        self.seen_ids: set[str] = set()  # record ids found after the last checkpoint


class _Torn(ValueError):
    """The last line of a segment is unterminated or not JSON (a crash mid-write)."""


def _envelope_facts(raw: bytes) -> tuple[dict, dict]:
    env = json.loads(raw)
    inner = json.loads(env["signed_data"])
    return env, inner


def _resume_from_head(st: ChainState, folder: Path, segs: list[Path]) -> tuple[int, int, int]:
    """Start from HEAD's checkpoint when it is usable; returns (segment index, byte offset, line number)."""
    head = read_head(folder)
    if not head:
        return 0, 0, 1
    names = [s.name for s in segs]
    if head.get("segment") not in names or segs[names.index(head["segment"])].stat().st_size < head["offset"]:
        return 0, 0, 1
    st.seq, st.last_hash = head["next_seq"], head["last_hash"]
    st.frontier = Frontier.from_json(head["frontier"])
    st.last_checkpoint = {"tree_size": head["tree_size"], "root_hash": head["root_hash"]}
    st.lines_in_segment = head["line"]
    return names.index(head["segment"]), head["offset"], head["line"] + 1


def _check_line(st: ChainState, line: Line, first: bool, pending_ack: str | None) -> tuple[dict, dict]:
    """Parse one line and check that it continues the chain (and acknowledges a torn segment
    when one is pending); raises _Torn for a torn line, ValueError/KeyError/TypeError otherwise."""
    if not line.complete:
        raise _Torn("unterminated line")
    try:
        env, inner = _envelope_facts(line.raw)
    except ValueError as exc:
        raise _Torn(f"unparseable line: {exc}") from exc
    ok = (inner["seq"] == st.seq and inner["prev_hash"] == st.last_hash
          and sha256_hex(env["signed_data"]) == env["hash"])
    if not ok:
        raise ValueError("chain does not continue")
    if pending_ack is not None:
        rec = inner["record"]
        if not (first and rec.get("type") == "event" and rec.get("kind") == "torn_segment"
                and rec.get("segment") == pending_ack):
            raise ValueError(f"torn segment {pending_ack} not acknowledged")
    return env, inner


def _advance(st: ChainState, env: dict, inner: dict, line: Line) -> None:
    """Move the chain state past one valid line."""
    st.frontier.append(leaf_hash(env["signed_data"].encode("utf-8")))
    st.seq += 1
    st.last_hash = env["hash"]
    st.lines_in_segment = line.number
    st.seen_ids.add(env["record_id"])
    if env.get("type") == "checkpoint":
        st.since_checkpoint = 0
        rec = inner["record"]
        st.last_checkpoint = {"tree_size": rec["tree_size"], "root_hash": rec["root_hash"]}
    else:
        st.since_checkpoint += 1


def scan_tail(folder: Path) -> ChainState:
    """Rebuild the chain state from disk: from HEAD's checkpoint (if usable) to the end.

    Raises ProvenanceError on damage that is not a torn last line.
    """
    st = ChainState()
    segs = list_segments(folder)
    if not segs:
        return st
    start_idx, offset, line_no = _resume_from_head(st, folder, segs)
    pending_ack: str | None = None
    for i, seg in enumerate(segs[start_idx:], start=start_idx):
        size = seg.stat().st_size
        st.segment = seg
        if i > start_idx:
            offset, line_no, st.lines_in_segment = 0, 1, 0
        first = True
        for line in read_lines(seg, offset, line_no):
            try:
                env, inner = _check_line(st, line, first, pending_ack)
                pending_ack = None
            except (ValueError, KeyError, TypeError) as exc:
                at_end = line.end == size and isinstance(exc, _Torn)
                if at_end and i == len(segs) - 1 and pending_ack is None:
                    st.torn = {
                        "segment": seg.name, "line": line.number, "offset": line.start,
                        "length": line.end - line.start, "sha256": sha256_hex(line.raw),
                        "reason": str(exc),
                    }
                    return st
                if at_end and pending_ack is None:
                    pending_ack = seg.name  # the next segment must acknowledge it
                    break
                raise ProvenanceError(f"provenance log damaged at {seg.name}:{line.number} ({exc}); "
                                      f"run `sahayak provenance verify`") from exc
            first = False
            _advance(st, env, inner, line)
    if pending_ack is not None:
        raise ProvenanceError(f"torn segment {pending_ack} is not followed by its acknowledgement")
    return st
