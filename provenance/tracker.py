"""The tracker: the public API that builds provenance records and hands them to the writer.

Callers never wait on signing or disk: ``record_*`` puts a small item on a queue and
returns the record id. The background writer (:mod:`provenance.writer`) redacts,
pseudonymises, signs, chains and appends each record to the current JSONL segment, and
writes a signed Merkle checkpoint every ``settings.checkpoint_every`` records (fsync +
``HEAD.json``) and on ``flush()``.

Crash safety (:mod:`provenance.recovery`): on start (and after any write error) the writer
re-reads the tail of the log. A torn last line is left exactly as it is and acknowledged by
a signed ``torn_segment`` event at the start of a new segment; a damaged line anywhere else
stops the tracker (``healthy()`` is False) instead of writing on top of a log that no longer
verifies.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from app.core.fingerprint import dataset_hash, environment_facts, git_commit
from app.core.redaction import Redactor, map_strings, withhold
from app.core.settings import get_settings
from app.text.preprocess import normalize
from provenance.canonical import sha256_hex, stable_json
from provenance.errors import ProvenanceError
from provenance.keys import KeyRing, keyring_for, pseudonym, pseudonym_key, pseudonym_with
from provenance.records import base_record, new_record_id
from provenance.writer import WorkItem, Writer

# Re-exported: callers and tests import these from here.
__all__ = ["ProvenanceError", "Tracker", "dataset_hash", "get_tracker", "pseudonym", "reset_tracker"]


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
        self._pkey: bytes | None = None
        self._writer = Writer(self.folder, self._keyring, self.algorithm, self.checkpoint_every, self.rotate_bytes)
        atexit.register(self._atexit)

    # --- public API -------------------------------------------------------------------
    def pseudonym(self, value: str | None, prefix: str) -> str | None:
        """Keyed HMAC pseudonym of a session or user id (stable per installation)."""
        if value is None:
            return None
        if self._pkey is None:
            self._pkey = pseudonym_key(self.settings)
        return pseudonym_with(self._pkey, value, prefix)

    def record_turn(self, *, turn_id: str, session_id: str, user_id: str | None, channel: str, text: str,
                    chatml: Any, intent: str, confidence: float, entities: dict[str, Any], handler: str | None,
                    outcome: str, state: str, reply: str, passages: list[dict[str, Any]] | None = None,
                    scoring_request_id: str | None = None, latency_ms: float = 0.0,
                    model_versions: dict[str, Any] | None = None, timestamp: datetime | str | None = None,
                    stage_ms: dict[str, float] | None = None, dialogue: dict[str, Any] | None = None) -> str:
        """Queue one conversation turn; returns its record id immediately.

        ``intent`` is the task the turn was about (a "yes" inside a transfer is the transfer's turn);
        ``dialogue`` holds how the message was read: ``act``, ``classifier_intent`` and its confidence,
        ``language``, the ``policy`` that answered and the rewritten retrieval ``query`` (redacted).
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
                "input": red(self._as_seen(text or "")),
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
            if dialogue:
                rec["dialogue"] = map_strings(dict(dialogue), red)
            return rec

        self._put(WorkItem("record", rid, build))
        return rid

    def _as_seen(self, text: str) -> str:
        """The customer's message as the pipeline read it: normalised (invisible and bidi characters
        gone, NFKC, ASCII digits) and cut to the message limit, so that what is stored (after
        redaction) is what a person reading it sees, never a raw envelope that hides a number."""
        limit = int(getattr(self.settings, "max_message_chars", 2000) or 2000)
        if len(text) > limit:
            return normalize(text[:limit])[:200] + " …[truncated]"
        return normalize(text)

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

        self._put(WorkItem("record", rid, build))
        return rid

    def record_dataset(self, path: str | os.PathLike[str], description: str, sha256: str | None = None,
                       **extra: Any) -> str:
        """Record a dataset (its SHA-256 is computed now when not given); returns the record id.

        The dataset's identity in the graph is its SHA-256 (see :func:`dataset_hash`)."""
        rid = new_record_id()
        digest = sha256 or dataset_hash(path)
        rec = base_record("dataset", rid)
        rec.update({"path": str(path), "sha256": digest, "description": description, **extra})
        self._put(WorkItem("record", rid, lambda: rec))
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
        self._put(WorkItem("record", rid, lambda: rec))
        return rid

    def record_training(self, *, training_id: str, model_id: str, started_at: str, ended_at: str,
                        agent: dict[str, str], dataset_hashes: list[str], git_commit: str | None,
                        command: str, **extra: Any) -> str:
        """Record a training activity (real start/end, the agent, datasets used, model generated).

        Trainers call :func:`provenance.training.record_training_run`, which writes this with
        the datasets and the model."""
        rid = new_record_id()
        rec = base_record("training", rid)
        rec.update({"training_id": training_id, "model_id": model_id, "started_at": started_at,
                    "ended_at": ended_at, "agent": dict(agent), "dataset_hashes": list(dataset_hashes),
                    "git_commit": git_commit, "command": command, **extra})
        self._put(WorkItem("record", rid, lambda: rec))
        return rid

    def rotate_key(self, algorithm: str | None = None, timeout: float | None = 30.0) -> dict[str, Any]:
        """Generate a new signing key; the old key signs a ``key_rotation`` event naming the new one."""
        ev = threading.Event()
        item = WorkItem("rotate", event=ev, payload={"alg": algorithm or self.algorithm})
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
        self._put(WorkItem("flush", event=ev))
        if not ev.wait(timeout):
            raise ProvenanceError(f"provenance flush timed out after {timeout}s ({self._writer.queued()} queued)")
        if self._writer.error is not None or self._writer.pending:
            raise ProvenanceError(f"provenance log cannot be written: {self._writer.error}")

    def close(self, timeout: float | None = 60.0) -> None:
        """Flush and stop the writer thread (a later record starts it again)."""
        thread = self._writer.running_thread()
        if thread is None:
            return
        try:
            self.flush(timeout)
        finally:
            self._writer.stop(thread, timeout)

    def healthy(self) -> bool:
        """True when the log folder is usable and nothing is stuck unwritten."""
        # Records in flight are normal; only a write that failed (and is being retried) is not.
        if self._writer.error is not None:
            return False
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            return False
        return self.folder.is_dir() and os.access(self.folder, os.W_OK)

    @property
    def last_error(self) -> str | None:
        """The last write failure as one line (None while writing works)."""
        error = self._writer.error
        return None if error is None else f"{type(error).__name__}: {error}"

    @property
    def records_written(self) -> int:
        """Lines this tracker has written (checkpoints included)."""
        return self._writer.records_written

    def stats(self) -> dict[str, Any]:
        """Queue length, unwritten records, lines written, next sequence number and health."""
        st = self._writer.state
        return {"queued": self._writer.queued(), "pending": len(self._writer.pending), "written": self.records_written,
                "next_seq": st.seq if st else None, "healthy": self.healthy(), "error": self.last_error}

    # --- plumbing -----------------------------------------------------------------------
    def _put(self, item: WorkItem) -> None:
        self._writer.put(item)

    def _atexit(self) -> None:
        try:
            self.close(timeout=30)
        except Exception as exc:  # noqa: BLE001 - at exit there is nobody left to raise to
            print(f"provenance: records could not be written at exit: {exc}", file=sys.stderr)


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
