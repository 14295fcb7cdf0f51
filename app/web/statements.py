"""``GET /statements/{token}``: a generated account statement, for its owner only, through a valid
signed link that has not expired (the scheme of :mod:`app.web.files`, keys from :mod:`app.core.links`).

403 for a missing, forged, altered or expired signature; 404 when the logged-in customer is not the
statement's owner (another customer's statement reads exactly like one that does not exist) or the
statement itself has expired; 401 when nobody is logged in.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.bank.errors import NotFound
from app.bank.statements import CSV_MIME, ROUTE
from app.web import runtime

router = APIRouter()
_HEADERS = {"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'"}


def _username(request: Request) -> str | None:
    """The username in the caller's Chainlit login cookie, or None."""
    # Deferred: Chainlit's import writes config files; this only runs inside the chat server.
    from chainlit.auth import get_token_from_cookies
    from chainlit.auth.jwt import decode_jwt

    token = get_token_from_cookies(request.cookies)
    if not token:
        return None
    try:
        return decode_jwt(token).identifier
    except Exception:  # noqa: BLE001 - expired, forged or malformed token: no access
        return None


def _plain(text: str, status: int) -> Response:
    return Response(text, status_code=status, media_type="text/plain", headers=_HEADERS)


@router.get(ROUTE + "/{token}")
def statement_file(request: Request, token: str) -> Response:
    """The statement CSV, as an attachment, for its logged-in owner through a valid link."""
    bank = runtime.get_bank()
    if not bank.check_statement_link(token, request.query_params.get("expires"), request.query_params.get("sig")):
        return _plain("link expired or invalid", 403)
    username = _username(request)
    customer = bank.get_customer(username) if username else None
    if customer is None:
        return _plain("please log in", 401)
    try:
        body, filename = bank.open_statement(token, customer.id)
    except NotFound:
        return _plain("not found", 404)
    headers = {**_HEADERS, "Content-Disposition": f'attachment; filename="{filename}"'}
    return Response(body, media_type=CSV_MIME, headers=headers)
