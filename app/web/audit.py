"""What the staff console shows, gathered from the owning modules (bank hand-offs, provenance
audit queries and per-session verification). Synchronous; the routes call it in a thread."""

from __future__ import annotations

import logging
from typing import Any

from app.settings import get_settings

log = logging.getLogger("sahayak.web.audit")
LOW_CONFIDENCE = 0.6


def _queries() -> Any | None:
    try:
        from provenance import queries
    except ImportError:
        return None
    return queries


def _call(names: tuple[str, ...], *args: Any, **kwargs: Any) -> Any:
    """Call the first audit query of ``names`` that provenance provides (None when none does)."""
    q = _queries()
    if q is None:
        return None
    for name in names:
        fn = getattr(q, name, None)
        if callable(fn):
            return fn(*args, **kwargs)
    return None


def _handoffs() -> list[dict[str, Any]]:
    from app.web.runtime import get_bank

    out = []
    for h in get_bank().list_handoffs(status=None):
        d = h.model_dump() if hasattr(h, "model_dump") else dict(vars(h))
        out.append(d)
    return out


def overview() -> dict[str, Any]:
    """Sessions, hand-off queue and low-confidence turns, each a list of plain dicts."""
    problems: list[str] = []
    settings = get_settings()
    try:
        sessions = _call(("list_sessions", "sessions"), settings=settings) or []
    except Exception as exc:  # noqa: BLE001 - show the rest of the console
        problems.append(f"sessions: {type(exc).__name__}: {exc}")
        sessions = []
    try:
        low = _call(("low_confidence_turns", "low_confidence"), settings=settings) or []
    except Exception as exc:  # noqa: BLE001
        problems.append(f"low-confidence turns: {type(exc).__name__}: {exc}")
        low = []
    try:
        handoffs = _handoffs()
    except Exception as exc:  # noqa: BLE001
        problems.append(f"hand-offs: {type(exc).__name__}: {exc}")
        handoffs = []
    if _queries() is None:
        problems.append("audit queries (provenance.queries) are not installed in this build")
    return {"sessions": list(sessions), "handoffs": handoffs, "low_confidence": list(low), "problems": problems}


def session_detail(session_id: str) -> dict[str, Any]:
    """The session's timeline and its verification (signature, chain, checkpoint)."""
    settings = get_settings()
    problems: list[str] = []
    timeline: list[dict[str, Any]] = []
    verification: dict[str, Any] = {}
    try:
        got = _call(("session_timeline", "timeline"), session_id, settings=settings)
        if isinstance(got, dict):
            timeline = list(got.get("turns") or got.get("timeline") or [])
            verification = dict(got.get("verification") or {})
        elif got:
            timeline = list(got)
    except Exception as exc:  # noqa: BLE001
        problems.append(f"timeline: {type(exc).__name__}: {exc}")
    if not verification:
        try:
            verification = dict(_call(("verify_session",), session_id, settings=settings) or {})
        except Exception as exc:  # noqa: BLE001
            problems.append(f"verification: {type(exc).__name__}: {exc}")
    return {"timeline": timeline, "verification": verification, "problems": problems}


def lineage_image(session_id: str) -> tuple[bytes | None, str]:
    """(image bytes, media type) of the session's lineage graph, or (None, '')."""
    settings = get_settings()
    for names, media in ((("lineage_svg",), "image/svg+xml"), (("lineage_png",), "image/png")):
        try:
            body = _call(names, session_id, settings=settings)
        except Exception as exc:  # noqa: BLE001
            log.warning("lineage picture failed: %s", type(exc).__name__)
            body = None
        if body:
            return (body.encode() if isinstance(body, str) else body), media
    return None, ""
