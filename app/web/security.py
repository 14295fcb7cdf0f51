"""The chat server's web security controls, installed on Chainlit's app by :func:`install`.

Chainlit 2.x leaves these to the application, so they live here, in one place:

* **Origins.** The chat socket (``/ws/socket.io``, polling and WebSocket alike) refuses any
  ``Origin`` other than the server's own (``SAHAYAK_ALLOWED_ORIGINS`` to widen it behind a
  proxy): a page on another port or host cannot drive a logged-in customer's chat (CSWSH).
* **CSRF token per login.** Every sign-in has an id (``sid``, a row in the bank's
  ``web_logins``) carried in the login token; the socket connect must also present
  ``HMAC(sid)``, which only a page of our own origin can read (``/sahayak/session.js``:
  ``Cross-Origin-Resource-Policy: same-origin``; it puts the token in the ``userEnv`` that
  Chainlit's client sends with the socket handshake).
* **Revocation.** A token whose sign-in is revoked (logout), expired or unknown is stripped from
  the request before Chainlit sees it, on every HTTP request and socket connect, cookie or
  Bearer alike: the caller is simply not logged in.
* **Cookies** are ``SameSite=Strict``, and ``Secure`` over TLS (or ``SAHAYAK_COOKIE_SECURE``).
* **Headers.** A CSP on the chat pages (``img-src 'self'``, ``frame-ancestors 'none'``, scripts
  from our origin plus the hashes of Chainlit's own inline script), ``nosniff``, no framing.
* **Switched-off features stay off** on the server: socket ``edit_message``, thread sharing, uploads.
* **Thread and feedback ownership.** An unknown thread and another user's thread both answer
  404; feedback may only be written on (or deleted from) the caller's own messages.
* FastAPI's ``/docs``, ``/redoc`` and ``/openapi.json`` are not served.
"""

from __future__ import annotations

import base64
import contextvars
import hashlib
import hmac
import json
import logging
import os
import re
import time
from http.cookies import SimpleCookie
from typing import Any, Awaitable, Callable

import jwt as pyjwt
from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers

from app.core.settings import get_settings
from app.web import runtime
from app.web.routes import mount_first

# Chainlit is imported inside the functions below (heavy: ~1.2 s, and its import writes .chainlit/ and
# .files/ into the working directory), so importing this module never loads it.

log = logging.getLogger("sahayak.web.security")

SOCKET_PATH = "/ws/socket.io"
AUTH_COOKIE = "access_token"  # Chainlit's (CHAINLIT_AUTH_COOKIE_NAME default), also chunked as access_token_<n>
CSRF_KEY = "sahayak_csrf"  # in the socket handshake's userEnv
SID_KEY = "sid"  # in the login token's user metadata
HIDDEN_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
_ACTIVE_TTL_S = 2.0  # a positive revocation check is reused this long (a logout here evicts it at once)

# The client address of the HTTP request being served (the login callback gets no request).
client_address: contextvars.ContextVar[str] = contextvars.ContextVar("sahayak_client_address", default="unknown")

# Set per POST /login: the sign-in callback records why it refused (Chainlit would answer a bare 401).
login_refusal: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("sahayak_login_refusal",
                                                                                     default=None)


class LoginRefused(Exception):
    """A sign-in refused for a reason the person should read (lockout, demo account in production)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


def refuse_login(exc: LoginRefused) -> None:
    """Make the current /login request answer ``exc``'s status and message."""
    holder = login_refusal.get()
    if holder is not None:
        holder.update(status=exc.status, detail=exc.detail)


ASGIApp = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]


# --------------------------------------------------------------------------- tokens
def _secret() -> str:
    return os.environ.get("CHAINLIT_AUTH_SECRET") or runtime.auth_secret()


def csrf_token(sid: str) -> str:
    """The CSRF token of sign-in ``sid``: an HMAC keyed from the login secret (its own key)."""
    key = hashlib.sha256(b"sahayak csrf\n" + _secret().encode()).digest()
    return hmac.new(key, sid.encode(), hashlib.sha256).hexdigest()


def token_claims(token: str) -> dict[str, Any] | None:
    """The verified claims of a Chainlit login token, else None (forged, expired, malformed)."""
    try:
        return pyjwt.decode(token, _secret(), algorithms=["HS256"])
    except pyjwt.PyJWTError:
        return None


def login_of(token: str) -> tuple[str, str] | None:
    """(username, sign-in id) carried by a valid token, else None."""
    claims = token_claims(token)
    if not claims:
        return None
    sid = (claims.get("metadata") or {}).get(SID_KEY)
    ident = claims.get("identifier")
    return (ident, sid) if isinstance(ident, str) and isinstance(sid, str) and sid else None


def _cookies(headers: Headers) -> dict[str, str]:
    jar = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:  # noqa: BLE001 - a malformed Cookie header carries no login
        return {}
    return {k: m.value for k, m in jar.items()}


def request_token(headers: Headers) -> str | None:
    """The login token of a request: Chainlit's cookie (maybe chunked), else a Bearer header."""
    cookies = _cookies(headers)
    token = cookies.get(AUTH_COOKIE) or "".join(
        cookies[f"{AUTH_COOKIE}_{i}"] for i in range(len(cookies)) if f"{AUTH_COOKIE}_{i}" in cookies) or None
    if token:
        return token
    scheme, _, value = headers.get("authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


_active_cache: dict[str, float] = {}


def login_active(token: str) -> bool:
    """True when the token is valid and its sign-in is still active in the bank (not logged out)."""
    found = login_of(token)
    if found is None:
        return False
    user, sid = found
    if _active_cache.get(sid, 0.0) > time.monotonic():
        return True
    ok = runtime.get_bank().logins.is_active(sid, user)
    if ok:
        now = time.monotonic()
        if len(_active_cache) > 10_000:  # keep the cache small: forget what has lapsed
            for key in [k for k, until in _active_cache.items() if until <= now]:
                _active_cache.pop(key, None)
        _active_cache[sid] = now + _ACTIVE_TTL_S
    return ok


def revoke(token: str | None) -> bool:
    """End the sign-in of ``token`` (logout); True when one was active."""
    found = login_of(token) if token else None
    if found is None:
        return False
    _active_cache.pop(found[1], None)
    return runtime.get_bank().logins.revoke(found[1])


# --------------------------------------------------------------------------- the middleware
def _strip_credentials(scope: dict) -> dict:
    """A copy of ``scope`` without login cookies or an Authorization header."""
    headers = []
    for name, value in scope["headers"]:
        if name == b"authorization":
            continue
        if name == b"cookie":
            kept = [c for c in value.decode("latin-1").split(";")
                    if not c.strip().split("=", 1)[0].startswith(AUTH_COOKIE)]
            if not kept:
                continue
            value = ";".join(kept).strip().encode("latin-1")
        headers.append((name, value))
    return {**scope, "headers": headers}


def _harden_cookie(value: str, secure: bool) -> str:
    """A Set-Cookie value with ``SameSite=Strict`` (and ``Secure`` when ``secure``)."""
    parts = [p.strip() for p in value.split(";") if p.strip()]
    parts = [p for p in parts if not p.lower().startswith("samesite")]
    parts.append("SameSite=strict")
    if secure and not any(p.lower() == "secure" for p in parts):
        parts.append("Secure")
    return "; ".join(parts)


class SecurityMiddleware:
    """ASGI middleware in front of everything Chainlit serves (HTTP and the socket)."""

    def __init__(self, app: ASGIApp, origins: list[str], csp: str, cookie_secure: bool) -> None:
        self.app = app
        self.origins = frozenset(o.rstrip("/") for o in origins)
        self.csp = csp
        self.cookie_secure = cookie_secure

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        path = scope.get("path", "")
        origin = headers.get("origin")
        if path.startswith(SOCKET_PATH) and origin and origin.rstrip("/") not in self.origins:
            log.warning("refused chat socket from foreign origin %r", origin)
            return await _refuse(scope, receive, send, 403, "origin not allowed")
        if path in HIDDEN_PATHS:
            return await _refuse(scope, receive, send, 404, "Not Found")
        if scope.get("client"):
            client_address.set(str(scope["client"][0]))
        token = request_token(headers)
        revoked = bool(token) and not await run_in_threadpool(login_active, token)
        if revoked:
            scope = _strip_credentials(scope)  # downstream sees an anonymous caller
        secure = self.cookie_secure or scope.get("scheme") in ("https", "wss")
        if scope["type"] == "websocket":
            return await self.app(scope, receive, send)

        async def send_hardened(message: dict) -> None:
            if message["type"] == "http.response.start":
                raw = [(k, v) for k, v in message.get("headers", [])]
                names = {k.lower() for k, _ in raw}
                out = []
                for k, v in raw:
                    if k.lower() == b"set-cookie":
                        v = _harden_cookie(v.decode("latin-1"), secure).encode("latin-1")
                    out.append((k, v))
                if revoked:  # tell the browser to forget the dead login
                    out.append((b"set-cookie", _harden_cookie(f"{AUTH_COOKIE}=; Max-Age=0; Path=/; HttpOnly",
                                                              secure).encode()))
                ctype = dict((k.lower(), v) for k, v in raw).get(b"content-type", b"")
                if ctype.startswith(b"text/html") and b"content-security-policy" not in names:
                    out.append((b"content-security-policy", self.csp.encode()))
                for k, v in ((b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
                             (b"referrer-policy", b"same-origin")):
                    if k not in names:
                        out.append((k, v))
                message = {**message, "headers": out}
            await send(message)

        if path == "/login" and scope.get("method") == "POST":
            return await self._login(scope, receive, send_hardened)
        await self.app(scope, receive, send_hardened)

    async def _login(self, scope: dict, receive: Callable, send: Callable) -> None:
        """Chainlit's /login, answering a lockout (429) or a refused demo account (403) with its reason."""
        holder: dict[str, Any] = {}
        login_refusal.set(holder)
        captured: list[dict] = []

        async def capture(message: dict) -> None:
            captured.append(message)
        await self.app(scope, receive, capture)
        if holder.get("status"):
            await JSONResponse({"detail": holder["detail"]}, status_code=holder["status"])(scope, receive, send)
            return
        for message in captured:
            await send(message)


async def _refuse(scope: dict, receive: Callable, send: Callable, status: int, detail: str) -> None:
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.close", "code": 1008})  # before accept: the handshake gets 403
        return
    await JSONResponse({"detail": detail}, status_code=status)(scope, receive, send)


# --------------------------------------------------------------------------- CSP
def chat_csp(inline_scripts: list[str]) -> str:
    """The chat pages' CSP: our origin only, plus the hashes of Chainlit's inline scripts."""
    hashes = " ".join("'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
                      for s in inline_scripts)
    return ("default-src 'self'; "
            f"script-src 'self' {hashes}; "
            "style-src 'self' 'unsafe-inline'; "  # React and Tailwind set inline styles
            "img-src 'self' data: blob:; "
            "font-src 'self' data:; "
            "connect-src 'self'; "
            "media-src 'self' blob:; "
            "worker-src 'self' blob:; "
            "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")


def inline_scripts(html: str) -> list[str]:
    """The bodies of the inline ``<script>`` elements of a page."""
    return [m.group(1) for m in re.finditer(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", html, re.S)]


# --------------------------------------------------------------------------- socket guards
def _environ_token(environ: dict) -> str | None:
    return request_token(Headers(raw=[(b"cookie", environ.get("HTTP_COOKIE", "").encode("latin-1"))]))


def guard_socket(sio: Any, origins: list[str], features: Any) -> None:
    """Wrap Chainlit's socket handlers: origin, live sign-in and CSRF token at connect;
    switched-off events refused."""
    allowed = frozenset(o.rstrip("/") for o in origins)
    sio.eio.cors_allowed_origins = sorted(allowed)  # engine.io refuses other Origins at the handshake too
    handlers = sio.handlers.setdefault("/", {})
    connect = handlers.get("connect")

    async def guarded_connect(sid: str, environ: dict, auth: dict | None = None) -> Any:
        origin = environ.get("HTTP_ORIGIN")
        if origin and origin.rstrip("/") not in allowed:
            raise ConnectionRefusedError("origin not allowed")
        token = _environ_token(environ)
        found = login_of(token) if token else None
        if found is None or not await run_in_threadpool(login_active, token):
            raise ConnectionRefusedError("authentication failed")
        try:
            env = json.loads((auth or {}).get("userEnv") or "{}")
        except (TypeError, ValueError):
            env = {}
        presented = env.get(CSRF_KEY) if isinstance(env, dict) else None
        if not isinstance(presented, str) or not hmac.compare_digest(presented, csrf_token(found[1])):
            log.warning("refused chat socket of %r: missing or wrong CSRF token", found[0])
            raise ConnectionRefusedError("csrf token missing or wrong")
        return await connect(sid, environ, auth)

    if connect is not None:
        handlers["connect"] = guarded_connect

    if not getattr(features, "edit_message", False):
        async def refuse_edit(sid: str, payload: Any = None) -> None:
            log.warning("refused socket edit_message (editing is switched off)")

        handlers["edit_message"] = refuse_edit


# --------------------------------------------------------------------------- routes
router = APIRouter()

BOOT_JS = """(function () {
  // Sahayak: the per-login CSRF token goes with the chat socket's handshake (Chainlit's userEnv).
  var token = %s;
  try {
    if (token) { localStorage.setItem("userEnv", JSON.stringify({"%s": token})); }
    else { localStorage.removeItem("userEnv"); }
  } catch (e) {}
  // A sign-in or sign-out changes the token: load the page again (the app waits meanwhile, so
  // its socket never starts without the new token).
  var f = window.fetch;
  window.fetch = function (input, init) {
    var p = f.apply(this, arguments);
    try {
      var url = new URL(typeof input === "string" ? input : input.url, location.href);
      var method = ((init && init.method) || (input && input.method) || "GET").toUpperCase();
      if (method === "POST" && /\\/(login|logout)$/.test(url.pathname)) {
        return p.then(function (r) {
          if (!r.ok) { return r; }
          location.assign(/\\/logout$/.test(url.pathname) ? "/login" : "/");
          return new Promise(function () {});
        });
      }
    } catch (e) {}
    return p;
  };
})();
"""


@router.get("/sahayak/session.js")
async def session_js(request: Request) -> Response:
    """The page's boot script: hands our own pages the CSRF token of the current sign-in."""
    headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
               "Cross-Origin-Resource-Policy": "same-origin"}
    site = request.headers.get("sec-fetch-site")
    token = request_token(request.headers)
    found = login_of(token) if token else None
    value = "null"
    # Only for our own pages: a cross-site <script> include never gets the token.
    if found and site in (None, "same-origin", "none"):
        value = json.dumps(csrf_token(found[1]))
    return Response(BOOT_JS % (value, CSRF_KEY), media_type="application/javascript", headers=headers)


async def _owner_of_step(step_id: str) -> str | None:
    from chainlit.data import get_data_layer  # heavy: Chainlit (see the note at the imports)

    rows = await get_data_layer().execute_sql(
        query='SELECT t."userIdentifier" AS owner FROM steps s JOIN threads t ON s."threadId" = t."id" '
              'WHERE s."id" = :id', parameters={"id": step_id})
    return rows[0].get("owner") if isinstance(rows, list) and rows else None


async def _owner_of_feedback(feedback_id: str) -> str | None:
    from chainlit.data import get_data_layer  # heavy: Chainlit (see the note at the imports)

    rows = await get_data_layer().execute_sql(
        query='SELECT t."userIdentifier" AS owner FROM feedbacks f JOIN steps s ON f."forId" = s."id" '
              'JOIN threads t ON s."threadId" = t."id" WHERE f."id" = :id', parameters={"id": feedback_id})
    return rows[0].get("owner") if isinstance(rows, list) and rows else None


async def _current_user(request: Request) -> Any:
    from chainlit.auth import authenticate_user  # heavy: Chainlit (see the note at the imports)

    token = request_token(request.headers)
    if not token:
        raise HTTPException(status_code=401, detail="Unauthorized")
    return await authenticate_user(token)


def _not_found() -> HTTPException:
    return HTTPException(status_code=404, detail="Not found")


@router.put("/feedback")
async def put_feedback(request: Request) -> Any:
    """Chainlit's feedback endpoint, for the caller's own messages (and own chat session) only."""
    from chainlit.server import update_feedback  # heavy: Chainlit (see the note at the imports)
    from chainlit.session import WebsocketSession
    from chainlit.types import UpdateFeedbackRequest

    user = await _current_user(request)
    try:
        update = UpdateFeedbackRequest.model_validate(await request.json())
    except Exception as exc:  # noqa: BLE001 - a malformed body
        raise HTTPException(status_code=422, detail="invalid feedback") from exc
    fb = update.feedback
    if await _owner_of_step(fb.forId) != user.identifier:
        raise _not_found()
    if fb.id and await _owner_of_feedback(fb.id) not in (None, user.identifier):
        raise _not_found()
    session = WebsocketSession.get_by_id(update.sessionId)
    if session is None or session.user is None or session.user.identifier != user.identifier:
        raise _not_found()
    return await update_feedback(request, update, user)


@router.delete("/feedback")
async def remove_feedback(request: Request) -> Any:
    """Chainlit's feedback deletion, for the caller's own feedback only."""
    from chainlit.server import delete_feedback  # heavy: Chainlit (see the note at the imports)
    from chainlit.types import DeleteFeedbackRequest

    user = await _current_user(request)
    try:
        payload = DeleteFeedbackRequest.model_validate(await request.json())
    except Exception as exc:  # noqa: BLE001
        raise HTTPException(status_code=422, detail="invalid request") from exc
    if await _owner_of_feedback(payload.feedbackId) != user.identifier:
        raise _not_found()
    return await delete_feedback(request, payload, user)


def _sharing_on() -> bool:
    from chainlit.config import config  # heavy: Chainlit (see the note at the imports)

    return bool(getattr(config.features, "allow_thread_sharing", False))


@router.put("/project/thread/share")
async def share_thread(request: Request) -> Any:
    """Thread sharing is switched off: refused here, whatever the client sends."""
    if not _sharing_on():
        raise HTTPException(status_code=403, detail="thread sharing is disabled")
    from chainlit.server import share_thread as chainlit_share  # heavy: Chainlit (see the note at the imports)
    from chainlit.types import ShareThreadRequest

    user = await _current_user(request)
    return await chainlit_share(request, ShareThreadRequest.model_validate(await request.json()), user)


@router.get("/project/share/{thread_id}")
async def shared_thread(request: Request, thread_id: str) -> Any:
    """Shared threads do not exist while sharing is off."""
    if not _sharing_on():
        raise _not_found()
    from chainlit.server import get_shared_thread  # heavy: Chainlit (see the note at the imports)

    return await get_shared_thread(request, thread_id, None)


@router.post("/project/file")
async def upload_file(request: Request) -> Any:
    """Uploads are switched off (they would bypass redaction): refused before Chainlit reads a byte."""
    from chainlit.config import config  # heavy: Chainlit (see the note at the imports)

    upload = getattr(config.features, "spontaneous_file_upload", None)
    if not (upload and upload.enabled):
        raise HTTPException(status_code=403, detail="file upload is disabled")
    raise HTTPException(status_code=403, detail="file upload is not offered by this app")


async def thread_author_or_404(username: str, thread_id: str) -> bool:
    """Chainlit's ``is_thread_author``, answering 404 for unknown *and* other people's threads."""
    from chainlit.data import get_data_layer  # heavy: Chainlit (see the note at the imports)

    layer = get_data_layer()
    try:
        author = await layer.get_thread_author(thread_id) if layer else None
    except Exception:  # noqa: BLE001 - the SQL layer raises for an unknown id
        author = None
    if not author or author != username:
        raise HTTPException(status_code=404, detail="Thread not found")
    return True


# --------------------------------------------------------------------------- install
def install(app: FastAPI, sio: Any, host: str, port: int) -> list[str]:
    """Put every control above on Chainlit's app and socket; returns the allowed origins."""
    import chainlit.server as cl_server  # heavy: Chainlit (see the note at the imports)
    from chainlit.auth import cookie as cl_cookie
    from chainlit.config import config

    settings = get_settings()
    origins = settings.origins(host, port)
    cl_cookie._cookie_samesite = "strict"  # noqa: SLF001 - Chainlit reads these module globals per call
    if settings.cookie_secure:
        cl_cookie._cookie_secure = True  # noqa: SLF001
    cl_server.is_thread_author = thread_author_or_404
    guard_socket(sio, origins, config.features)
    mount_first(app, router)
    csp = chat_csp(inline_scripts(cl_server.get_html_template(config.run.root_path or "")))
    app.add_middleware(SecurityMiddleware, origins=origins, csp=csp, cookie_secure=settings.cookie_secure)
    log.info("chat socket origins: %s", ", ".join(origins))
    return origins
