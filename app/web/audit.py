"""What the staff console shows, gathered from the owning modules: the bank's hand-off queue,
the provenance audit queries over the graph (``provenance.queries.Audit``) and the per-session
verification from the signed log (``provenance.queries.verify_session``).

The graph is a convenience, not an authority: a session's timeline is rendered from the verified
signed log, and each graph row is checked against its log record (✗ on a mismatch). Staff reads
are scoped (hand-off or flagged sessions, else a stated reason) and each is recorded in the signed
log as a ``staff_read`` event before anything is shown (issue 19, findings 3 and 9).

Synchronous; the routes call it in a worker thread. The chat process also runs the graph
importer (``start_graph_import``) so the graph follows the log while people chat.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from app.core.paths import DATA_DIR
from app.core.settings import get_settings
from app.web.runtime import get_assistant, get_support
from models.intents.data import OOS_LABEL, load_dataset
from provenance.graph import ContinuousImporter
from provenance.keys import pseudonym
from provenance.queries import Audit, render_lineage, verify_session
from provenance.records import INTENT_CORRECTION, STAFF_READ

log = logging.getLogger("sahayak.web.audit")

_importer: ContinuousImporter | None = None
_importer_lock = threading.Lock()


def start_graph_import() -> None:
    """Keep the provenance graph caught up with the log (background thread; idempotent)."""
    global _importer
    settings = get_settings()
    if not settings.graph_enabled:
        return
    with _importer_lock:
        if _importer is None:
            _importer = ContinuousImporter(settings, interval=1.0).start()


def stop_graph_import() -> None:
    """Stop the background graph importer, if it runs."""
    global _importer
    with _importer_lock:
        if _importer is not None:
            _importer.stop()
            _importer = None


def _seal_log() -> None:
    """Write and checkpoint what this process has recorded, so a staff check sees it sealed."""
    try:
        get_assistant().tracker.flush()
    except Exception as exc:  # noqa: BLE001 - verification below will show what is missing
        log.warning("provenance flush failed: %s", type(exc).__name__)


def _handoffs() -> list[dict[str, Any]]:
    return [h.model_dump() if hasattr(h, "model_dump") else dict(vars(h)) for h in get_support().list_handoffs(status=None)]


def _sessions(inferences: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Group recent turns by (pseudonymous) session: turn count, first/last time, intents."""
    by: dict[str, dict[str, Any]] = {}
    for t in inferences:
        sid = t.get("session")
        if not sid:
            continue
        s = by.setdefault(sid, {"session_id": sid, "turns": 0, "first": t.get("timestamp"), "last": t.get("timestamp"),
                                "intents": []})
        s["turns"] += 1
        ts = t.get("timestamp")
        if ts and (not s["first"] or ts < s["first"]):
            s["first"] = ts
        if ts and (not s["last"] or ts > s["last"]):
            s["last"] = ts
        if t.get("intent") and t["intent"] not in s["intents"]:
            s["intents"].append(t["intent"])
    return sorted(by.values(), key=lambda s: s["last"] or "", reverse=True)


def overview() -> dict[str, Any]:
    """Sessions, hand-off queue and low-confidence turns, each a list of plain dicts."""
    problems: list[str] = []
    sessions: list[dict[str, Any]] = []
    low: list[dict[str, Any]] = []
    try:
        with Audit(get_settings()) as audit:
            sessions = _sessions(audit.inferences(limit=500))
            low = audit.low_confidence(limit=50)
    except Exception as exc:  # noqa: BLE001 - show the rest of the console
        problems.append(f"audit graph: {exc}")
    try:
        handoffs = _handoffs()
    except Exception as exc:  # noqa: BLE001
        problems.append(f"hand-offs: {type(exc).__name__}: {exc}")
        handoffs = []
    return {"sessions": sessions, "handoffs": handoffs, "low_confidence": low, "problems": problems}


# Fields of a turn the console shows; the graph's copy must match the signed log's on each of them.
_SHOWN = ("input", "reply", "intent", "confidence", "handler", "outcome")
MIN_REASON_CHARS = 10
MAX_REASON_CHARS = 500


def _content_hash(row: dict[str, Any]) -> str:
    """A digest of the shown fields of one turn (the log's record or the graph's row)."""
    shown = {k: (round(float(row[k]), 6) if k == "confidence" and row.get(k) is not None else row.get(k))
             for k in _SHOWN}
    return hashlib.sha256(json.dumps(shown, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


def _verification(v: dict[str, Any]) -> tuple[dict[str, Any], dict[str, bool | None]]:
    """(summary {signature, chain, checkpoint, detail}, per-turn verified flag) from the signed log."""
    recs = v.get("records") or []
    per_turn: dict[str, bool | None] = {}
    for r in recs:
        if r.get("turn_id"):
            ok: bool | None = bool(r["signature_ok"] and r["chain_ok"])
            if ok and r.get("included") is None:
                ok = None  # signed and chained, not yet under a checkpoint
            elif ok:
                ok = bool(r["included"])
            per_turn[r["turn_id"]] = ok
    included = [r.get("included") for r in recs]
    summary = {
        "signature": bool(recs) and all(r["signature_ok"] for r in recs),
        "chain": bool(recs) and all(r["chain_ok"] for r in recs),
        # True: every record is under a signed Merkle checkpoint; None: some are not yet; False: a proof failed.
        "checkpoint": False if (not recs or False in included) else (None if None in included else True),
        "records": len(recs),
        "pseudonym": v.get("session"),
        "detail": (f"{len(recs)} signed records; whole log "
                   + ("verifies" if v.get("log_ok") else f"has {v.get('log_failures')} failure(s)")),
    }
    return summary, per_turn


def session_scope(session: str, v: dict[str, Any]) -> str | None:
    """Why staff may open this session without stating a reason: ``handoff`` (a hand-off ticket or
    event), ``flagged`` (a low-confidence or failed turn, or a thumbs-down), else ``None``.

    Decided from the bank's tickets and the *verified* log, never from the graph."""
    settings = get_settings()
    sid = v.get("session") or session
    contents = [r.get("content") or {} for r in v.get("records") or []]
    support = get_support()
    if any(c.get("kind") == "handoff" for c in contents) or any(
            pseudonym(settings, t.session_id, "s_") == sid for t in support.list_handoffs(status=None)):
        return "handoff"
    threshold = float(settings.clarify_threshold)
    for c in contents:
        if c.get("type") == "turn" and (float(c.get("confidence") or 0.0) < threshold
                                        or c.get("outcome") in ("failed", "handoff")):
            return "flagged"
    if any(pseudonym(settings, f.session_id, "s_") == sid for f in support.list_feedback(rating=-1)):
        return "flagged"
    return None


def valid_reason(reason: str | None) -> str | None:
    """The stated reason, trimmed, when it is long enough to mean something; else ``None``."""
    text = " ".join((reason or "").split())[:MAX_REASON_CHARS]
    return text if len(text) >= MIN_REASON_CHARS else None


def record_staff_read(staff: str, route: str, *, session: str | None = None, scope: str = "reason",
                      reason: str | None = None, turn_id: str | None = None, durable: bool = True) -> str:
    """Put one staff read into the signed log (who, which session, why); with ``durable`` wait
    until it is written and checkpointed. Raises when it cannot be recorded: no unrecorded reads."""
    tracker = get_assistant().tracker
    fields: dict[str, Any] = {"staff": staff, "scope": scope, "route": route}
    if session:
        fields["session"] = session  # already a pseudonym
    if reason:
        fields["reason"] = reason
    if turn_id:
        fields["turn_id"] = turn_id
    rid = tracker.record_event(STAFF_READ, **fields)
    if durable:
        tracker.flush(timeout=30)
    return rid


def session_detail(session_id: str, staff: str = "", reason: str | None = None, wait_s: float = 8.0) -> dict[str, Any]:
    """The session's timeline and verification, from the verified signed log, with each turn's
    graph row checked against its log record (a mismatch shows ✗ and the log's text).

    Staff open hand-off and flagged sessions directly; any other needs a stated ``reason``. Every
    read is recorded as a signed ``staff_read`` event before anything is shown; when the session
    is out of scope without a reason, or the read cannot be recorded, nothing of it is returned
    (``refused`` / ``blocked``)."""
    problems: list[str] = []
    _seal_log()
    try:
        v = verify_session(session_id, settings=get_settings())
    except Exception as exc:  # noqa: BLE001 - without the log there is nothing trustworthy to show
        return {"blocked": True, "timeline": [], "verification": {}, "reads": [], "lineage_turn": None,
                "problems": [f"verification: {type(exc).__name__}: {exc}"]}
    sid = v.get("session") or session_id
    scope = session_scope(session_id, v)
    stated = valid_reason(reason)
    if scope is None and stated is None:
        return {"refused": True, "session_pseudonym": sid, "problems": problems, "timeline": [], "reads": [],
                "verification": {}, "lineage_turn": None, "reason_given": bool((reason or "").strip())}
    try:
        read_id = record_staff_read(staff, "session", session=sid, scope=scope or "reason", reason=stated)
    except Exception as exc:  # noqa: BLE001 - an unrecorded read is not allowed
        return {"blocked": True, "timeline": [], "verification": {}, "reads": [], "lineage_turn": None,
                "problems": [f"this read could not be recorded in the audit log, so it is not shown: "
                             f"{type(exc).__name__}"]}
    verification, per_turn = _verification(v)
    timeline, reads = _log_timeline(v, per_turn)
    graph_ok = _check_against_graph(session_id, timeline, wait_s, problems)
    verification["graph"] = graph_ok
    # Draw the latest turn that used passages (the richest lineage), else the latest turn.
    last_turn = next((t["turn_id"] for t in reversed(timeline) if t.get("turn_id") and t.get("passages")),
                     next((t["turn_id"] for t in reversed(timeline) if t.get("turn_id")), None))
    return {"timeline": timeline[-50:], "verification": verification, "problems": problems, "lineage_turn": last_turn,
            "reads": reads, "scope": scope or "reason", "read_id": read_id, "session_pseudonym": sid}


def _log_timeline(v: dict[str, Any], per_turn: dict[str, bool | None]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Timeline rows (turns and events) and earlier staff reads, from the verified records only."""
    timeline: list[dict[str, Any]] = []
    reads: list[dict[str, Any]] = []
    for r in v.get("records") or []:
        c = r.get("content")
        if c is None:  # a line that failed verification: shown as such, its claims are not
            timeline.append({"kind": "invalid", "intent": "record failed verification", "text": None,
                             "reply": r.get("failure"), "verified": False, "timestamp": r.get("timestamp")})
            continue
        if c.get("type") == "turn":
            timeline.append({"kind": "turn", "turn_id": c.get("turn_id"), "timestamp": c.get("timestamp"),
                             "text": c.get("input"), "input": c.get("input"), "reply": c.get("reply"),
                             "intent": c.get("intent"), "confidence": c.get("confidence"),
                             "act": (c.get("dialogue") or {}).get("act"),
                             "language": (c.get("dialogue") or {}).get("language"),
                             "handler": c.get("handler"), "outcome": c.get("outcome"),
                             "passages": c.get("passages") or [], "model_versions": c.get("model_versions") or {},
                             "verified": per_turn.get(c.get("turn_id")), "hash": _content_hash(c)})
        elif c.get("kind") == STAFF_READ:
            reads.append({"timestamp": c.get("timestamp"), "staff": c.get("staff"), "scope": c.get("scope"),
                          "reason": c.get("reason"), "route": c.get("route")})
        elif c.get("type") == "event":
            detail = {k: v for k, v in c.items() if k not in ("record_id", "type", "timestamp", "schema_version",
                                                              "kind", "session", "user")}
            timeline.append({"kind": "event", "intent": f"event: {c.get('kind')}", "timestamp": c.get("timestamp"),
                             "reply": json.dumps(detail, ensure_ascii=False, sort_keys=True), "verified": None})
    return timeline, reads


def _check_against_graph(session_id: str, timeline: list[dict[str, Any]], wait_s: float,
                         problems: list[str]) -> bool | None:
    """Compare each turn's graph row with its signed record (content hash of the shown fields).

    Marks rows ``graph_ok`` False (and the turn ✗) on a mismatch; a turn the graph has but the log
    does not is added as a ✗ row without its text. Returns True (all match), False (a mismatch)
    or None (graph unreachable or behind)."""
    turns = {t["turn_id"]: t for t in timeline if t.get("kind") == "turn"}
    try:
        with Audit(get_settings()) as audit:
            rows = _session_rows(audit, session_id, len(turns), wait_s)
    except Exception as exc:  # noqa: BLE001 - the log alone still shows the truth
        problems.append(f"audit graph: {exc}")
        return None
    graph_turns = {r["id"]: r for r in rows if r.get("kind") == "turn"}
    bad = 0
    for tid, row in graph_turns.items():
        logged = turns.get(tid)
        if logged is None:
            bad += 1
            timeline.append({"kind": "turn", "turn_id": None, "intent": "not in the signed log", "text": None,
                             "reply": f"the graph holds a turn {tid} that the signed log does not",
                             "verified": False, "graph_ok": False, "graph_diff": ["whole turn"]})
            continue
        diff = [k for k in _SHOWN if _content_hash({k: row.get(k)}) != _content_hash({k: logged.get(k)})]
        logged["graph_ok"] = not diff
        logged["graph_diff"] = diff
        if diff:
            bad += 1
            logged["verified"] = False
    missing = [tid for tid in turns if tid not in graph_turns]
    if bad:
        problems.append(f"the graph differs from the signed log for {bad} turn(s) — it may have been altered; "
                        "the signed log's text is shown")
        return False
    if missing:
        problems.append("the graph has not caught up with the log yet; reload in a moment")
        return None
    return True


def _session_rows(audit: Audit, session_id: str, logged_turns: int, wait_s: float) -> list[dict[str, Any]]:
    """The session's timeline rows from the graph, waiting up to ``wait_s`` for the turns the log has."""
    deadline = time.monotonic() + wait_s
    while True:
        rows = audit.session_timeline(session_id)
        turns = [r for r in rows if r.get("kind") == "turn"]
        # The importer follows the log a moment behind; wait briefly for this session's turns.
        if len(turns) >= logged_turns or time.monotonic() > deadline:
            return rows
        time.sleep(0.5)


def lineage_png(turn_id: str) -> bytes | None:
    """PNG of one turn's lineage (datasets → models → turn → passages → documents)."""
    with Audit(get_settings()) as audit, tempfile.TemporaryDirectory() as tmp:
        path = render_lineage(audit, turn_id, Path(tmp) / "lineage.png")
        return path.read_bytes()


@functools.lru_cache(maxsize=1)
def intent_labels() -> tuple[str, ...]:
    """The intents a reviewer may choose: those of the shipped training data, plus Out_Of_Scope."""
    return tuple(sorted(set(load_dataset(DATA_DIR / "intents").label_set) | {OOS_LABEL}))


class CorrectionRefused(Exception):
    """A correction that cannot be accepted (status code and a line for the reviewer)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def correct_intent(session_id: str, turn_id: str, correct: str, staff: str, *, reason: str | None = None,
                   comment: str | None = None) -> dict[str, Any]:
    """A reviewer marks a turn's intent wrong and names the right one.

    The turn must be one of this session's turns in the *verified* signed log (its text and the
    predicted intent come from there, never from the form or the graph), and the session must be
    one the reviewer may open (hand-off, flagged, or a stated reason, as for reading it). Writes a
    feedback row (``intents export-feedback`` turns it into training data) and a signed
    ``intent_correction`` event naming the reviewer, both before answering."""
    if correct not in intent_labels():
        raise CorrectionRefused(400, "unknown intent")
    _seal_log()
    v = verify_session(session_id, settings=get_settings())
    sid = v.get("session") or session_id
    scope = session_scope(session_id, v)
    stated = valid_reason(reason)
    if scope is None and stated is None:
        raise CorrectionRefused(403, "this session is outside the staff queue: state a reason first")
    turn = next((r.get("content") for r in v.get("records") or []
                 if r.get("turn_id") == turn_id and r.get("type") == "turn" and r.get("content")
                 and r["signature_ok"] and r["chain_ok"]), None)
    if turn is None:
        raise CorrectionRefused(404, "no such verified turn in this session")
    predicted = turn.get("intent")
    if predicted == correct:
        raise CorrectionRefused(400, f"the turn is already recorded as {correct}")
    note = " ".join((comment or "").split())[:MAX_REASON_CHARS] or None
    feedback_id = get_support().add_feedback(
        # The raw session id when the reviewer came by it (the overview links pseudonyms).
        session_id=session_id if not session_id.startswith("s_") else sid, turn_id=turn_id, rating=-1, text=turn.get("input") or "", predicted_intent=predicted,
        correct_intent=correct, comment=f"staff correction by {staff}" + (f": {note}" if note else ""))
    tracker = get_assistant().tracker
    fields: dict[str, Any] = {"staff": staff, "session": sid, "turn_id": turn_id, "predicted_intent": predicted,
                              "correct_intent": correct, "feedback_id": feedback_id, "scope": scope or "reason"}
    if stated:
        fields["reason"] = stated
    if note:
        fields["comment"] = note
    rid = tracker.record_event(INTENT_CORRECTION, **fields)
    tracker.flush(timeout=30)
    return {"record_id": rid, "feedback_id": feedback_id, "predicted_intent": predicted, "correct_intent": correct}
