"""The tracker: builds records, signs and chains them on a background writer thread.

Callers never wait on signing or disk: ``record_*`` puts a small item on a queue and
returns the record id. One writer thread redacts, pseudonymises, signs, chains and
appends each record to the current JSONL segment, writes a signed Merkle checkpoint
every ``settings.checkpoint_every`` records (fsync + ``HEAD.json``) and on ``flush()``.

Crash safety: on start (and after any write error) the writer re-reads the tail of the
log. A last line that is unterminated or unparseable is a *torn tail*: it is left exactly
as it is, and a new segment starts whose first record is a ``torn_segment`` event
(segment name, line, byte offset, length and SHA-256 of the torn bytes) chained to the
last valid record. A damaged line anywhere else stops the tracker (``healthy()`` is
False) instead of writing on top of a log that no longer verifies.
"""

from __future__ import annotations

import atexit
import hashlib
import hmac
import json
import logging
import os
import queue
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from app.core.errors import SahayakError
from app.core.fingerprint import dataset_hash, environment_facts, git_commit
from app.core.fsutil import fsync_dir
from app.core.redaction import Redactor, map_strings, withhold
from app.core.settings import get_settings
from provenance.canonical import sha256_hex, stable_json
from provenance.keys import KeyRing, Signer, keyring_for, pseudonym_key, public_pem
from provenance.log import (
    list_segments,
    read_head,
    read_lines,
    segment_counter,
    segment_name,
    write_head,
)
from provenance.merkle import Frontier, leaf_hash
from provenance.records import GENESIS_HASH, base_record, new_record_id, seal

log = logging.getLogger(__name__)


class ProvenanceError(SahayakError):
    """The audit log cannot be written or is damaged; money movement must not proceed."""


def pseudonym(settings: Any, value: str | None, prefix: str) -> str | None:
    """The installation's keyed HMAC pseudonym of a session (``s_``) or user (``u_``) id."""
    if value is None:
        return None
    key = pseudonym_key(settings)
    return prefix + hmac.new(key, str(value).encode(), hashlib.sha256).hexdigest()[:20]


# ---------------------------------------------------------------------------------------
# writer state
# ---------------------------------------------------------------------------------------
class _Item:
    __slots__ = ("kind", "record_id", "build", "event", "payload")

    def __init__(self, kind: str, record_id: str | None = None, build: Callable[[], dict] | None = None,
                 event: threading.Event | None = None, payload: Any = None) -> None:
        self.kind = kind  # record | flush | rotate | stop
        self.record_id = record_id
        self.build = build
        self.event = event
        self.payload = payload


class _State:
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


def _envelope_facts(raw: bytes) -> tuple[dict, dict]:
    env = json.loads(raw)
    inner = json.loads(env["signed_data"])
    return env, inner


class _Torn(ValueError):
    """The last line of a segment is unterminated or not JSON (a crash mid-write)."""


def scan_tail(folder: Path) -> _State:
    """Rebuild the chain state from disk: from HEAD's checkpoint (if usable) to the end.

    Raises ProvenanceError on damage that is not a torn last line.
    """
    st = _State()
    segs = list_segments(folder)
    if not segs:
        return st
    head = read_head(folder)
    start_idx, offset, line_no = 0, 0, 1
    if head:
        names = [s.name for s in segs]
        if head.get("segment") in names and segs[names.index(head["segment"])].stat().st_size >= head["offset"]:
            start_idx = names.index(head["segment"])
            offset, line_no = head["offset"], head["line"] + 1
            st.seq, st.last_hash = head["next_seq"], head["last_hash"]
            st.frontier = Frontier.from_json(head["frontier"])
            st.last_checkpoint = {"tree_size": head["tree_size"], "root_hash": head["root_hash"]}
            st.lines_in_segment = head["line"]
    pending_ack: str | None = None
    for i, seg in enumerate(segs[start_idx:], start=start_idx):
        size = seg.stat().st_size
        st.segment = seg
        if i > start_idx:
            offset, line_no, st.lines_in_segment = 0, 1, 0
        first = True
        for line in read_lines(seg, offset, line_no):
            try:
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
    if pending_ack is not None:
        raise ProvenanceError(f"torn segment {pending_ack} is not followed by its acknowledgement")
    return st


class Tracker:
    """Signed, chained, append-only provenance log with a background writer.

    Thread-safe. ``record_*`` return at once; ``flush()`` waits until everything queued
    is on disk with a signed checkpoint; ``close()`` flushes and stops the writer (it
    restarts on the next record). ``healthy()`` is False while records cannot be written.
    """

    def __init__(self, settings: Any = None, *, redactor: Redactor | None = None) -> None:
        settings = settings or get_settings()
        self.settings = settings
        # Passed in by the composition root (privacy.redact); without one, text is withheld.
        self._redact: Redactor = redactor or withhold
        self.folder = Path(settings.provenance_dir)
        self.checkpoint_every = max(1, int(settings.checkpoint_every))
        self.rotate_bytes = int(settings.provenance_rotate_bytes)
        self.algorithm = settings.signing_algorithm
        self._keyring: KeyRing = keyring_for(settings)
        self._signer: Signer | None = None
        self._pkey: bytes | None = None
        self._q: queue.Queue[_Item] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._pending: list[_Item] = []
        self._state: _State | None = None
        self._fh: Any = None
        self._day: str | None = None
        self._closed = False
        self.records_written = 0
        atexit.register(self._atexit)

    # --- public API -------------------------------------------------------------------
    def pseudonym(self, value: str | None, prefix: str) -> str | None:
        """Keyed HMAC pseudonym of a session or user id (stable per installation)."""
        if value is None:
            return None
        if self._pkey is None:
            self._pkey = pseudonym_key(self.settings)
        return prefix + hmac.new(self._pkey, str(value).encode(), hashlib.sha256).hexdigest()[:20]

    def record_turn(self, *, turn_id: str, session_id: str, user_id: str | None, channel: str, text: str,
                    chatml: Any, intent: str, confidence: float, entities: dict[str, Any], handler: str | None,
                    outcome: str, state: str, reply: str, passages: list[dict[str, Any]] | None = None,
                    scoring_request_id: str | None = None, latency_ms: float = 0.0,
                    model_versions: dict[str, Any] | None = None, timestamp: datetime | str | None = None,
                    stage_ms: dict[str, float] | None = None) -> str:
        """Queue one conversation turn; returns its record id immediately.

        ``stage_ms`` holds per-stage latencies (preprocess, understand, dialogue, save, total)
        for monitoring (`sahayak report`)."""
        rid = new_record_id()
        ts = timestamp or datetime.now(timezone.utc)
        passages = [dict(p) for p in (passages or [])]
        model_versions = dict(model_versions or {})
        entities = dict(entities or {})

        def build() -> dict:
            red = self._redact
            rec = base_record("turn", rid, ts)
            prompt = chatml if isinstance(chatml, str) else stable_json(chatml)
            rec.update({
                "turn_id": turn_id,
                "session": self.pseudonym(session_id, "s_"),
                "user": self.pseudonym(user_id, "u_"),
                "channel": channel,
                "input": red(text or ""),
                "prompt_hash": sha256_hex(prompt or ""),
                "intent": intent,
                "confidence": float(confidence),
                "entities": map_strings(entities, red),
                "handler": handler,
                "outcome": outcome,
                "state": state,
                "passages": [_passage(p) for p in passages],
                "scoring_request_id": scoring_request_id,
                "reply": red(reply or ""),
                "latency_ms": round(float(latency_ms), 3),
                "stage_ms": {str(k): round(float(v), 3) for k, v in (stage_ms or {}).items()},
                "model_versions": {str(k): (v if isinstance(v, (str, int, float)) or v is None else stable_json(v))
                                   for k, v in model_versions.items()},
            })
            return rec

        self._put(_Item("record", rid, build))
        return rid

    def record_event(self, kind: str, **fields: Any) -> str:
        """Queue a staff/system event (hand-off, key rotation, …); session/user ids are pseudonymised."""
        rid = new_record_id()
        ts = fields.pop("timestamp", None) or datetime.now(timezone.utc)

        def build() -> dict:
            rec = base_record("event", rid, ts)
            body = dict(fields)
            if "session_id" in body:
                body["session"] = self.pseudonym(body.pop("session_id"), "s_")
            if "user_id" in body:
                body["user"] = self.pseudonym(body.pop("user_id"), "u_")
            safe = {k: v for k, v in body.items() if k in ("session", "user", "turn_id")}
            rec.update(map_strings({k: v for k, v in body.items() if k not in safe}, self._redact))
            rec.update(safe)
            rec["kind"] = kind
            return rec

        self._put(_Item("record", rid, build))
        return rid

    def record_dataset(self, path: str | os.PathLike[str], description: str, sha256: str | None = None,
                       **extra: Any) -> str:
        """Record a dataset (its SHA-256 is computed now when not given); returns the record id.

        The dataset's identity in the graph is its SHA-256 (see :func:`dataset_hash`)."""
        rid = new_record_id()
        digest = sha256 or dataset_hash(path)
        rec = base_record("dataset", rid)
        rec.update({"path": str(path), "sha256": digest, "description": description, **extra})
        self._put(_Item("record", rid, lambda: rec))
        return rid

    def record_model(self, name: str, version: str, *, hyperparameters: dict[str, Any] | None = None,
                     metrics: dict[str, Any] | None = None, dataset_hashes: list[str] | None = None,
                     git_commit_id: str | None = None, environment: dict[str, Any] | None = None,
                     **extra: Any) -> str:
        """Record a trained model (git commit and environment filled in when not given)."""
        rid = new_record_id()
        rec = base_record("model", rid)
        rec.update({
            "name": name, "version": str(version), "hyperparameters": hyperparameters or {},
            "metrics": metrics or {}, "dataset_hashes": list(dataset_hashes or []),
            "git_commit": git_commit_id if git_commit_id is not None else git_commit(),
            "environment": environment if environment is not None else environment_facts(), **extra,
        })
        self._put(_Item("record", rid, lambda: rec))
        return rid

    def rotate_key(self, algorithm: str | None = None, timeout: float | None = 30.0) -> dict[str, Any]:
        """Generate a new signing key; the old key signs a ``key_rotation`` event naming the new one."""
        ev = threading.Event()
        item = _Item("rotate", event=ev, payload={"alg": algorithm or self.algorithm})
        self._put(item)
        if not ev.wait(timeout):
            raise ProvenanceError("key rotation timed out")
        if isinstance(item.payload.get("error"), BaseException):
            raise ProvenanceError(f"key rotation failed: {item.payload['error']}")
        return item.payload["result"]

    def flush(self, timeout: float | None = None) -> None:
        """Block until every queued record is written, checkpointed and fsynced.

        Raises ProvenanceError if records cannot be written (the caller must not act unaudited)."""
        ev = threading.Event()
        self._put(_Item("flush", event=ev))
        if not ev.wait(timeout):
            raise ProvenanceError(f"provenance flush timed out after {timeout}s ({self._q.qsize()} queued)")
        if self._error is not None or self._pending:
            raise ProvenanceError(f"provenance log cannot be written: {self._error}")

    def close(self, timeout: float | None = 60.0) -> None:
        """Flush and stop the writer thread (a later record starts it again)."""
        with self._lock:
            thread = self._thread
        if thread is None or not thread.is_alive():
            return
        try:
            self.flush(timeout)
        finally:
            ev = threading.Event()
            self._q.put(_Item("stop", event=ev))
            thread.join(timeout)

    def healthy(self) -> bool:
        """True when the log folder is usable and nothing is stuck unwritten."""
        # Records in flight are normal; only a write that failed (and is being retried) is not.
        if self._error is not None:
            return False
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            return False
        return self.folder.is_dir() and os.access(self.folder, os.W_OK)

    @property
    def last_error(self) -> str | None:
        return None if self._error is None else f"{type(self._error).__name__}: {self._error}"

    def stats(self) -> dict[str, Any]:
        st = self._state
        return {"queued": self._q.qsize(), "pending": len(self._pending), "written": self.records_written,
                "next_seq": st.seq if st else None, "healthy": self.healthy(), "error": self.last_error}

    # --- writer thread ----------------------------------------------------------------
    def _put(self, item: _Item) -> None:
        self._ensure_thread()
        self._q.put(item)

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="provenance-writer", daemon=True)
                self._thread.start()

    def _atexit(self) -> None:
        try:
            self.close(timeout=30)
        except Exception as exc:  # noqa: BLE001 - at exit there is nobody left to raise to
            print(f"provenance: records could not be written at exit: {exc}", file=sys.stderr)

    def _run(self) -> None:
        while True:
            try:
                first = self._q.get(timeout=1.0 if self._pending else None)
            except queue.Empty:
                self._process([])  # retry records a write error left pending
                continue
            batch = [first]
            while len(batch) < 2000:
                try:
                    batch.append(self._q.get_nowait())
                except queue.Empty:
                    break
            stop = self._process(batch)
            if stop:
                return

    def _process(self, batch: list[_Item]) -> bool:
        waiters: list[_Item] = []
        rotations: list[_Item] = []
        stop = False
        for it in batch:
            if it.kind == "record":
                self._pending.append(it)
            elif it.kind == "flush":
                waiters.append(it)
            elif it.kind == "rotate":
                rotations.append(it)
            elif it.kind == "stop":
                stop = True
                waiters.append(it)
        try:
            self._open()
            self._write_pending()
            for rot in rotations:
                try:
                    rot.payload["result"] = self._rotate(rot.payload["alg"])
                except Exception as exc:  # noqa: BLE001 - reported to the caller
                    rot.payload["error"] = exc
                    raise
            if waiters or stop:
                self._checkpoint(force=False, durable=True)
            self._error = None
        except Exception as exc:  # noqa: BLE001 - disk full, permissions, damage: surface, retry later
            if self._error is None or str(self._error) != str(exc):
                log.error("provenance writer: %s", exc)
            self._error = exc
            self._drop_file()
        finally:
            for it in waiters + rotations:
                if it.event is not None:
                    it.event.set()
        if stop:
            self._drop_file()
        return stop

    def _drop_file(self) -> None:
        if self._fh is not None:
            try:
                self._fh.close()
            except OSError:
                pass
        self._fh = None
        self._state = None  # re-read from disk before the next write

    def _signer_now(self) -> Signer:
        if self._signer is None:
            self._signer = self._keyring.active(self.algorithm)
        return self._signer

    def _open(self) -> None:
        """Make sure the chain state is known and a segment is open for appending."""
        if self._state is not None and self._fh is not None:
            return
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = scan_tail(self.folder)
        self._pending = [it for it in self._pending if it.record_id not in st.seen_ids]
        self._state = st
        self._signer_now()
        if st.torn is not None or st.segment is None:
            self._new_segment()
            if st.torn is not None:
                torn, st.torn = st.torn, None
                self._append([self._build_event("torn_segment", **torn, last_valid_seq=st.seq - 1,
                                                last_valid_hash=st.last_hash)])
                self._checkpoint(force=True, durable=True)
        else:
            self._open_segment(st.segment)

    def _open_segment(self, path: Path) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        # Unbuffered: each batch is one write we can roll back if it fails (see _write_all).
        self._fh = os.fdopen(fd, "ab", buffering=0)
        self._state.segment = path
        self._day = datetime.now(timezone.utc).strftime("%Y%m%d")

    def _new_segment(self) -> None:
        st = self._state
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            self._fh = None
        segs = list_segments(self.folder)
        counter = segment_counter(segs[-1]) + 1 if segs else 1
        day = datetime.now(timezone.utc).strftime("%Y%m%d")
        path = self.folder / segment_name(counter, day)
        self._open_segment(path)
        st.lines_in_segment = 0
        fsync_dir(self.folder)

    def _maybe_rotate_segment(self) -> None:
        today = datetime.now(timezone.utc).strftime("%Y%m%d")
        if self._fh.tell() >= self.rotate_bytes or today != self._day:
            if self._fh.tell() > 0:
                self._new_segment()

    def _build_event(self, kind: str, **fields: Any) -> dict:
        rec = base_record("event", new_record_id())
        rec.update(fields)
        rec["kind"] = kind
        return rec

    def _append(self, records: list[dict]) -> None:
        """Seal records in order and write them (one write call per batch)."""
        st = self._state
        signer = self._signer_now()
        out: list[str] = []
        for rec in records:
            line, h, leaf = seal(rec, st.seq, st.last_hash, signer)
            out.append(line)
            st.frontier.append(leaf)
            st.seq += 1
            st.last_hash = h
            st.since_checkpoint += 1
        data = ("\n".join(out) + "\n").encode("utf-8") if out else b""
        if data:
            self._write_all(data)
            st.lines_in_segment += len(out)
            self.records_written += len(out)

    def _write_pending(self) -> None:
        while self._pending:
            # Rotate only when there is something to write, so no empty segment is ever left behind.
            self._maybe_rotate_segment()
            chunk = self._pending[: max(1, self.checkpoint_every - self._state.since_checkpoint)]
            records = []
            for it in chunk:
                try:
                    records.append(it.build())
                except Exception as exc:  # noqa: BLE001 - an unbuildable record is itself recorded
                    records.append(self._build_event("record_error", failed_record_id=it.record_id,
                                                     error=f"{type(exc).__name__}: {exc}"))
            self._append(records)
            del self._pending[: len(chunk)]
            if self._state.since_checkpoint >= self.checkpoint_every:
                self._checkpoint(force=True, durable=True)

    def _write_all(self, data: bytes) -> None:
        """Append ``data`` completely, or roll the file back to where it was and raise.

        A write this process *knows* failed (disk full, I/O error) is undone, so it never
        leaves a torn line behind; its records stay pending and are retried, and the chain
        state is re-read from disk. A torn line left by a crash is different: it is found
        and reported at the next start (scan_tail), never silently removed.
        """
        start = self._fh.seek(0, os.SEEK_END)
        try:
            view = memoryview(data)
            while view:
                view = view[self._fh.write(view):]
        except OSError:
            try:
                os.ftruncate(self._fh.fileno(), start)
            except OSError:
                pass
            raise

    def _checkpoint(self, force: bool, durable: bool) -> None:
        """Append a signed checkpoint over every record so far, fsync, and update HEAD."""
        st = self._state
        if st is None or self._fh is None:
            return
        if not force and st.since_checkpoint == 0:
            if durable:
                self._fh.flush()
                os.fsync(self._fh.fileno())
            return
        rec = base_record("checkpoint", new_record_id())
        rec.update({
            "tree_size": st.seq,
            "root_hash": st.frontier.root().hex(),
            "prev_tree_size": (st.last_checkpoint or {}).get("tree_size"),
            "prev_root_hash": (st.last_checkpoint or {}).get("root_hash"),
        })
        line, h, leaf = seal(rec, st.seq, st.last_hash, self._signer_now())
        self._write_all(line.encode("utf-8") + b"\n")
        os.fsync(self._fh.fileno())
        st.frontier.append(leaf)
        st.seq += 1
        st.last_hash = h
        st.lines_in_segment += 1
        st.since_checkpoint = 0
        st.last_checkpoint = {"tree_size": rec["tree_size"], "root_hash": rec["root_hash"]}
        self.records_written += 1
        write_head(self.folder, {
            "checkpoint": line, "segment": st.segment.name, "line": st.lines_in_segment,
            "offset": self._fh.tell(), "next_seq": st.seq, "last_hash": st.last_hash,
            "frontier": st.frontier.to_json(), "tree_size": rec["tree_size"], "root_hash": rec["root_hash"],
        })

    def _rotate(self, alg: str) -> dict[str, Any]:
        old = self._signer_now()
        new = self._keyring.generate(alg)
        # Signed by the old key: whoever trusts it learns the new public key from the log itself.
        self._append([self._build_event("key_rotation", old_key_id=old.key_id, new_key_id=new.key_id,
                                        new_alg=new.alg, new_public_pem=public_pem(new.public_key))])
        self._signer = new
        self._checkpoint(force=True, durable=True)
        return {"old_key_id": old.key_id, "new_key_id": new.key_id, "alg": new.alg}


def _passage(p: dict[str, Any]) -> dict[str, Any]:
    """The fields of a retrieved passage that provenance keeps (ids, hash and scores, no text)."""
    out = {k: p.get(k) for k in ("doc_id", "chunk_id", "chunk_hash") if k in p}
    scores = p.get("scores")
    if isinstance(scores, dict):
        out["scores"] = {str(k): (round(float(v), 6) if isinstance(v, (int, float)) else v) for k, v in scores.items()}
    elif "score" in p:
        out["scores"] = {"score": p["score"]}
    for k in ("title", "rank"):
        if k in p:
            out[k] = p[k]
    return out


_singleton: Tracker | None = None
_singleton_lock = threading.Lock()


def get_tracker(settings: Any = None, *, redactor: Redactor | None = None) -> Tracker:
    """The process-wide tracker (created on first use with ``redactor``; see :class:`Tracker`)."""
    global _singleton
    if _singleton is None:
        with _singleton_lock:
            if _singleton is None:
                _singleton = Tracker(settings, redactor=redactor)
    return _singleton


def reset_tracker() -> None:
    """Close and forget the process-wide tracker (tests switch SAHAYAK_HOME between cases)."""
    global _singleton
    with _singleton_lock:
        t, _singleton = _singleton, None
    if t is not None:
        try:
            t.close()
        finally:
            atexit.unregister(t._atexit)
