"""What the staff console shows, gathered from the owning modules: the bank's hand-off queue,
the provenance audit queries over the graph (``provenance.queries.Audit``) and the per-session
verification from the signed log (``provenance.queries.verify_session``).

Synchronous; the routes call it in a worker thread. The chat process also runs the graph
importer (``start_graph_import``) so the graph follows the log while people chat.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from app.core.settings import get_settings
from app.web.runtime import get_assistant, get_support
from provenance.graph import ContinuousImporter
from provenance.queries import Audit, render_lineage, verify_session

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


def _verification(session_id: str) -> tuple[dict[str, Any], dict[str, bool | None]]:
    """(summary {signature, chain, checkpoint, detail}, per-turn verified flag) from the signed log."""
    v = verify_session(session_id, settings=get_settings())
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


def session_detail(session_id: str, wait_s: float = 8.0) -> dict[str, Any]:
    """The session's timeline (graph) and verification (log): signature, chain, checkpoint."""
    problems: list[str] = []
    _seal_log()
    try:
        verification, per_turn = _verification(session_id)
    except Exception as exc:  # noqa: BLE001
        problems.append(f"verification: {type(exc).__name__}: {exc}")
        verification, per_turn = {}, {}
    timeline: list[dict[str, Any]] = []
    try:
        with Audit(get_settings()) as audit:
            rows = _session_rows(audit, session_id, len(per_turn), wait_s)
            for r in rows[-50:]:
                timeline.append(_timeline_row(audit, r, per_turn))
    except Exception as exc:  # noqa: BLE001
        problems.append(f"audit graph: {exc}")
    if per_turn and len([t for t in timeline if t.get("kind") == "turn"]) < len(per_turn):
        problems.append("the graph has not caught up with the log yet; reload in a moment")
    # Draw the latest turn that used passages (the richest lineage), else the latest turn.
    last_turn = next((t["turn_id"] for t in reversed(timeline) if t.get("turn_id") and t.get("passages")),
                     next((t["turn_id"] for t in reversed(timeline) if t.get("turn_id")), None))
    return {"timeline": timeline, "verification": verification, "problems": problems, "lineage_turn": last_turn}


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


def _timeline_row(audit: Audit, r: dict[str, Any], per_turn: dict[str, bool | None]) -> dict[str, Any]:
    """One row of the console's timeline: a turn with its passages, model versions and verification,
    or an event."""
    row = dict(r)
    row["text"] = r.get("input")
    if r.get("kind") == "turn":
        try:
            why = audit.why(r["id"])
            row["passages"] = why.get("passages") or []
            row["model_versions"] = (why.get("turn") or {}).get("model_versions") or {}
        except Exception:  # noqa: BLE001 - a row without its extras is still useful
            row["passages"], row["model_versions"] = [], {}
        row["verified"] = per_turn.get(r["id"])
        row["turn_id"] = r["id"]
    else:
        row["intent"] = f"event: {r.get('event')}"
        row["reply"] = r.get("detail")
        row["verified"] = None
    return row


def lineage_png(turn_id: str) -> bytes | None:
    """PNG of one turn's lineage (datasets → models → turn → passages → documents)."""
    with Audit(get_settings()) as audit, tempfile.TemporaryDirectory() as tmp:
        path = render_lineage(audit, turn_id, Path(tmp) / "lineage.png")
        return path.read_bytes()
