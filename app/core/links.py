"""Signed, expiring links: the presigned-URL scheme of the chat file store (``app/web/files.py``),
usable below the web layer.

A link is ``<route>/<object id>?expires=<unix seconds>&sig=<HMAC-SHA256(key, object id \\n expires)>``:
it cannot be forged, altered or used after it expires. A signature only proves the link was made
here; the route that serves it must still check that the logged-in caller owns the object.

The key is derived per purpose from one random secret kept in ``$SAHAYAK_HOME/keys/link_secret``
(mode 0600, created on first use), so links of one kind never verify as another.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path
from urllib.parse import quote

SECRET_FILE = "link_secret"


def _signature(key: bytes, object_id: str, expires: int) -> str:
    return hmac.new(key, f"{object_id}\n{expires}".encode(), hashlib.sha256).hexdigest()


def load_secret(keys_dir: Path) -> bytes:
    """The installation's link secret (created once, readable only by the service user)."""
    keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = keys_dir / SECRET_FILE
    if not path.exists():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(48))
    return path.read_text(encoding="utf-8").strip().encode()


class LinkSigner:
    """Signs and checks links under ``route`` for one ``purpose`` (e.g. ``statements``)."""

    def __init__(self, secret: bytes, route: str, purpose: str) -> None:
        self.route = route.rstrip("/")
        self._key = hashlib.sha256(f"sahayak {purpose} links\n".encode() + secret).digest()

    def url(self, object_id: str, expires: float) -> str:
        """The signed link to ``object_id``, valid until ``expires`` (unix seconds)."""
        stamp = int(expires)
        return f"{self.route}/{quote(object_id, safe='')}?expires={stamp}&sig={_signature(self._key, object_id, stamp)}"

    def check(self, object_id: str, expires: str | None, sig: str | None, now: float | None = None) -> bool:
        """True when the signature matches and the link has not expired."""
        if not expires or not sig or not expires.isdigit():
            return False
        good = hmac.compare_digest(_signature(self._key, object_id, int(expires)), sig)
        return good and int(expires) >= (now if now is not None else time.time())
