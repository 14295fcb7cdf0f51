"""Element storage for chat history: cited passages survive a reopened thread.

Chainlit's SQLAlchemy data layer stores an element's *content* through a blob "storage client"
(S3, GCS, Azure in Chainlit itself) and keeps only the object key and a URL in the database.
:class:`LocalStorageClient` is the embedded default: files under ``$SAHAYAK_HOME/chat-files``,
served by ``GET /chat-files/{object_key}`` on the Chainlit server.

Access works like a presigned S3 URL *and* a login check:

* every URL carries an expiry and an HMAC-SHA256 signature over (object key, expiry), keyed from
  the chat login secret — a URL cannot be forged, altered or used after it expires;
* the caller must also be logged in as the thread's owner: Chainlit names objects
  ``<chainlit user id>/<element id>/<name>``, and the route checks the first part against the
  logged-in user, so a leaked URL is useless to anybody else.

File names on disk are the SHA-256 of the object key, so no key can escape the folder.
What reaches this store has already been redacted by the data layer.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.core.fsutil import write_atomic
from app.core.settings import Settings, get_settings
from app.web import runtime

ROUTE = "/chat-files"
URL_TTL_S = 3600  # as Chainlit's own storage clients (STORAGE_EXPIRY_TIME)


def _signature(secret: bytes, object_key: str, expires: int) -> str:
    return hmac.new(secret, f"{object_key}\n{expires}".encode(), hashlib.sha256).hexdigest()


def _signing_key(auth_secret: str) -> bytes:
    # A key of its own, derived from the login secret: file URLs never reveal anything about tokens.
    return hashlib.sha256(b"sahayak chat-files\n" + auth_secret.encode()).digest()


class LocalStorageClient:
    """A Chainlit storage client backed by a local folder (see the module docstring)."""

    def __init__(self, root: Path, auth_secret: str, ttl_s: int = URL_TTL_S) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._key = _signing_key(auth_secret)
        self.ttl_s = ttl_s

    def _path(self, object_key: str) -> Path:
        return self.root / hashlib.sha256(object_key.encode()).hexdigest()

    def signed_url(self, object_key: str, now: float | None = None) -> str:
        """A URL for ``object_key`` valid for ``ttl_s`` seconds."""
        expires = int((now if now is not None else time.time()) + self.ttl_s)
        sig = _signature(self._key, object_key, expires)
        return f"{ROUTE}/{quote(object_key, safe='/')}?expires={expires}&sig={sig}"

    def check(self, object_key: str, expires: str | None, sig: str | None, now: float | None = None) -> bool:
        """True when the signature matches and the URL has not expired."""
        if not expires or not sig or not expires.isdigit():
            return False
        good = hmac.compare_digest(_signature(self._key, object_key, int(expires)), sig)
        return good and int(expires) >= (now if now is not None else time.time())

    def read(self, object_key: str) -> tuple[bytes, str] | None:
        """(content, mime type) of a stored object, or None."""
        path = self._path(object_key)
        if not path.exists():
            return None
        meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        return path.read_bytes(), meta.get("mime", "application/octet-stream")

    # --- Chainlit's BaseStorageClient interface (async; the files are small text passages)
    async def upload_file(self, object_key: str, data: bytes | str, mime: str = "application/octet-stream",
                          overwrite: bool = True, content_disposition: str | None = None) -> dict[str, Any]:
        path = self._path(object_key)
        if path.exists() and not overwrite:
            return {"object_key": object_key, "url": self.signed_url(object_key)}
        body = data.encode("utf-8") if isinstance(data, str) else data
        write_atomic(path, body)
        path.with_suffix(".json").write_text(json.dumps({"object_key": object_key, "mime": mime}), encoding="utf-8")
        return {"object_key": object_key, "url": self.signed_url(object_key)}

    async def delete_file(self, object_key: str) -> bool:
        path = self._path(object_key)
        existed = path.exists()
        path.unlink(missing_ok=True)
        path.with_suffix(".json").unlink(missing_ok=True)
        return existed

    async def get_read_url(self, object_key: str) -> str:
        return self.signed_url(object_key)

    async def close(self) -> None:
        return None


def storage_client(settings: Settings | None = None) -> LocalStorageClient:
    """The installation's element store (under ``$SAHAYAK_HOME``), as a Chainlit storage client."""
    # Deferred, and registered as a virtual subclass: Chainlit only needs the interface, and this
    # module stays importable (and testable) without importing Chainlit, whose import writes config files.
    from chainlit.data.storage_clients.base import BaseStorageClient

    BaseStorageClient.register(LocalStorageClient)
    s = settings or get_settings()
    return LocalStorageClient(Path(s.home) / "chat-files", runtime.auth_secret(s))


@lru_cache(maxsize=1)
def _served_store() -> LocalStorageClient:
    return storage_client()


router = APIRouter()


async def _owner_id(request: Request) -> str | None:
    """The Chainlit user id of the logged-in caller, or None."""
    # Deferred: see storage_client (this runs in the chat process, where Chainlit is loaded).
    from chainlit.auth import get_token_from_cookies
    from chainlit.auth.jwt import decode_jwt
    from chainlit.data import get_data_layer

    token = get_token_from_cookies(request.cookies)
    if not token:
        return None
    try:
        user = decode_jwt(token)
    except Exception:  # noqa: BLE001 - expired, forged or malformed token: no access
        return None
    layer = get_data_layer()
    persisted = await layer.get_user(user.identifier) if layer else None
    return getattr(persisted, "id", None)


@router.get(ROUTE + "/{object_key:path}")
async def chat_file(request: Request, object_key: str) -> Response:
    """A stored element, for its owner only, through a valid signed URL (else 403/404)."""
    store = _served_store()
    headers = {"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff",
               "Content-Security-Policy": "default-src 'none'"}
    if not store.check(object_key, request.query_params.get("expires"), request.query_params.get("sig")):
        return Response("link expired or invalid", status_code=403, media_type="text/plain", headers=headers)
    owner = await _owner_id(request)
    if owner is None or object_key.split("/", 1)[0] != owner:
        return Response("not yours", status_code=403, media_type="text/plain", headers=headers)
    found = store.read(object_key)
    if found is None:
        return Response("not found", status_code=404, media_type="text/plain", headers=headers)
    body, mime = found
    return Response(body, media_type=mime, headers=headers)

