"""The staff audit console: HTML pages mounted on the Chainlit server under ``/staff``.

Authentication is Chainlit's own login: the JWT in the ``access_token`` cookie, verified with
the same secret. Authorisation asks the bank (the authority on roles), not the token: only a
user whose bank role is ``staff`` gets in; customers get 403, anonymous visitors go to /login.

Everything is rendered with Jinja2 autoescaping — chat text can contain ``<script>``.

The one write, an intent correction (``POST /staff/session/{id}/turn/{turn}/correct``), needs
the staff login *and* a same-origin request: the ``Origin`` header (or, without one, the
``Referer``) must name this server, so a page elsewhere cannot make a reviewer's browser post it.

Staff reads are scoped and audited (:mod:`app.web.audit`): a session page opens directly for a
hand-off or flagged session, any other needs a stated reason (the ``reason`` query parameter,
asked for by a form); each read — who, which session, why — is a signed ``staff_read`` record,
written before the page is. Timelines come from the verified signed log, not the graph.
"""

from __future__ import annotations

import base64
import logging
import tempfile
from pathlib import Path
from typing import Any

from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from app.conversation.monitoring import build_report, collect, render_pngs
from app.core.settings import get_settings
from app.web import audit
from app.web.runtime import get_bank

log = logging.getLogger("sahayak.web.staff")
TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                        autoescape=select_autoescape(default=True, default_for_string=True))
router = APIRouter(prefix="/staff")


class NotLoggedIn(Exception):
    """No valid Chainlit login cookie."""


def current_staff(request: Request) -> str:
    """The logged-in staff member's username; raises NotLoggedIn or HTTP 403."""
    # Deferred: importing Chainlit writes its config files; this module must import without it
    # (the console's unit tests mount it on a bare FastAPI app). In the chat process it is loaded.
    from chainlit.auth import get_token_from_cookies
    from chainlit.auth.jwt import decode_jwt

    token = get_token_from_cookies(request.cookies)
    if not token:
        raise NotLoggedIn()
    try:
        user = decode_jwt(token)
    except Exception as exc:  # noqa: BLE001 - expired, forged or malformed: log in again
        raise NotLoggedIn() from exc
    person = get_bank().get_customer(user.identifier)
    if person is None or person.role != "staff":
        raise HTTPException(status_code=403, detail="staff only")
    return person.username


def _page(name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    html = TEMPLATES.get_template(name).render(**ctx)
    return HTMLResponse(html, status_code=status, headers={
        "Content-Security-Policy": "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; form-action 'self'; "
                                   "frame-ancestors 'none'",
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    })


def _guard(request: Request) -> str | Response:
    try:
        return current_staff(request)
    except NotLoggedIn:
        return RedirectResponse("/login", status_code=303)
    except HTTPException:
        return _page("forbidden.html", status=403)


@router.get("", response_class=HTMLResponse)
@router.get("/", response_class=HTMLResponse)
async def overview(request: Request) -> Response:
    """Sessions, the hand-off queue and low-confidence turns."""
    who = _guard(request)
    if isinstance(who, Response):
        return who
    data = await run_in_threadpool(audit.overview)
    return _page("overview.html", staff=who, **data)


@router.get("/session/{session_id}", response_class=HTMLResponse)
async def session_timeline(request: Request, session_id: str,
                           reason: str | None = Query(None, max_length=audit.MAX_REASON_CHARS)) -> Response:
    """One session's turns (from the verified log), its verification and the graph check.

    Out of the staff queue (no hand-off, not flagged) it asks for a reason first (403 until given)."""
    who = _guard(request)
    if isinstance(who, Response):
        return who
    data = await run_in_threadpool(audit.session_detail, session_id, who, reason)
    if data.get("refused"):
        return _page("reason.html", status=403, staff=who, session_id=session_id,
                     min_chars=audit.MIN_REASON_CHARS, max_chars=audit.MAX_REASON_CHARS, **data)
    if data.get("blocked"):
        return _page("unavailable.html", status=503, staff=who, problems=data.get("problems"))
    return _page("session.html", staff=who, session_id=session_id, intents=audit.intent_labels(),
                 reason=reason or "", corrected=request.query_params.get("corrected"), **data)


def same_origin(request: Request) -> bool:
    """True when the request's Origin (else Referer) is this server's own scheme://host[:port]."""
    claimed = request.headers.get("origin") or request.headers.get("referer")
    if not claimed or claimed == "null":
        return False
    parts = urlsplit(claimed)
    host = request.headers.get("host", "")
    return parts.scheme == request.url.scheme and parts.netloc.lower() == host.lower()


@router.post("/session/{session_id}/turn/{turn_id}/correct")
async def correct_turn(request: Request, session_id: str, turn_id: str,
                       correct_intent: str = Form(..., max_length=64),
                       reason: str | None = Form(None, max_length=audit.MAX_REASON_CHARS),
                       comment: str | None = Form(None, max_length=audit.MAX_REASON_CHARS)) -> Response:
    """A reviewer marks this turn's intent wrong and picks the right one (feedback row + signed record)."""
    if not same_origin(request):  # before anything else: a cross-site post learns nothing
        return _page("forbidden.html", status=403)
    who = _guard(request)
    if isinstance(who, Response):
        return who
    try:
        done = await run_in_threadpool(audit.correct_intent, session_id, turn_id, correct_intent, who,
                                       reason=reason, comment=comment)
    except audit.CorrectionRefused as exc:
        return _page("unavailable.html", status=exc.status, staff=who, problems=[exc.message])
    except Exception as exc:  # noqa: BLE001 - not recorded, so not done: say so
        log.warning("intent correction failed: %s", type(exc).__name__)
        return _page("unavailable.html", status=503, staff=who,
                     problems=["the correction could not be recorded in the audit log, so it was not made"])
    query = {"corrected": turn_id, "correction": done["record_id"]}
    if reason:
        query["reason"] = reason
    return RedirectResponse(f"/staff/session/{session_id}?{urlencode(query)}", status_code=303)


def _monitoring() -> dict[str, Any]:
    """The monitoring report (as `sahayak report`) with its pictures inlined as base64 PNGs."""
    settings = get_settings()
    turns, feedback, verification = collect(settings)
    report = build_report(turns, feedback)
    report["verification"] = verification
    with tempfile.TemporaryDirectory() as tmp:
        pictures = [(p.stem.replace("_", " ").title(), base64.b64encode(p.read_bytes()).decode("ascii"))
                    for p in render_pngs(report, Path(tmp))]
    return {"report": report, "pictures": pictures}


@router.get("/monitoring", response_class=HTMLResponse)
async def monitoring(request: Request) -> Response:
    """Intent accuracy vs feedback, confusion, rates, handler success and latency (as `sahayak report`)."""
    who = _guard(request)
    if isinstance(who, Response):
        return who
    try:  # aggregates over every session: recorded too (queued; no single session is shown)
        await run_in_threadpool(audit.record_staff_read, who, "monitoring", scope="reason",
                                reason="monitoring report (aggregates)", durable=False)
    except Exception as exc:  # noqa: BLE001 - an unrecorded read is not allowed
        log.warning("staff read of monitoring not recorded: %s", type(exc).__name__)
        return _page("unavailable.html", status=503, staff=who,
                     problems=["this read could not be recorded in the audit log, so it is not shown"])
    data = await run_in_threadpool(_monitoring)
    return _page("monitoring.html", staff=who, **data)


@router.get("/turn/{turn_id}/lineage.png")
async def lineage_picture(request: Request, turn_id: str) -> Response:
    """The lineage graph of one turn as a PNG."""
    who = _guard(request)
    if isinstance(who, Response):
        return who
    try:
        # Ids and hashes only (no text), so no scope check; the read is recorded all the same.
        await run_in_threadpool(audit.record_staff_read, who, "lineage", scope="reason",
                                reason="lineage picture of one turn", turn_id=turn_id, durable=False)
        body = await run_in_threadpool(audit.lineage_png, turn_id)
    except Exception as exc:  # noqa: BLE001 - an unknown turn or a graph outage: say so, no traceback
        return Response(f"no lineage picture: {exc}", status_code=404, media_type="text/plain")
    return Response(body, media_type="image/png", headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})

