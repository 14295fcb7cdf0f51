"""Web sign-ins: revocable login sessions and sign-in throttling, recorded in the bank database.

* :meth:`Logins.start` records a sign-in and returns its id; the chat puts the id in the login
  token and :meth:`Logins.is_active` is asked on every request and socket connect, so
  :meth:`Logins.revoke` (logout) ends the token at once, cookie or Bearer alike.
* Failed sign-ins are counted per account and per client address within a window; reaching
  the limit records a :class:`~app.bank.models.LoginLockout` row (and a log line) and refuses
  further attempts, right or wrong, until it ends. A success clears the account's count.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update

from app.bank.db import Database
from app.bank.models import LoginFailure, LoginLockout, WebLogin

log = logging.getLogger("sahayak.security")


@dataclass(frozen=True)
class Lockout:
    """An active lockout: what is locked (``account``/``address``), which one, and until when."""

    kind: str
    key: str
    until: datetime

    def minutes_left(self, now: datetime) -> int:
        """Whole minutes (at least 1) until the lockout ends."""
        return max(1, int((self.until - now).total_seconds() + 59) // 60)


class Logins:
    """Login sessions and sign-in throttling on one bank :class:`Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # ------------------------------------------------------------------ login sessions
    def start(self, username: str, ttl_s: int) -> str:
        """Record a sign-in valid for ``ttl_s`` seconds; returns its (unguessable) id."""
        sid = secrets.token_urlsafe(24)
        now = self.db.now()
        with self.db.write() as s:
            s.add(WebLogin(id=sid, username=username, created_at=now, expires_at=now + timedelta(seconds=ttl_s)))
        return sid

    def is_active(self, sid: str, username: str | None = None) -> bool:
        """True when ``sid`` is a recorded, unexpired, unrevoked sign-in (of ``username``, if given)."""
        if not sid:
            return False
        with self.db.read() as s:
            row = s.get(WebLogin, sid)
            return (row is not None and row.revoked_at is None and row.expires_at > self.db.now()
                    and (username is None or row.username == username))

    def revoke(self, sid: str) -> bool:
        """End the sign-in ``sid`` (logout); True when it was active."""
        with self.db.write() as s:
            done = s.execute(update(WebLogin).where(WebLogin.id == sid, WebLogin.revoked_at.is_(None))
                             .values(revoked_at=self.db.now()))
            return bool(done.rowcount)

    # ------------------------------------------------------------------ throttling
    def lockout(self, username: str, address: str) -> Lockout | None:
        """The active lockout of this account or this address, else None."""
        now = self.db.now()
        with self.db.read() as s:
            row = s.scalars(select(LoginLockout).where(
                ((LoginLockout.kind == "account") & (LoginLockout.key == username))
                | ((LoginLockout.kind == "address") & (LoginLockout.key == address)),
                LoginLockout.until > now).order_by(LoginLockout.until.desc())).first()
            return Lockout(row.kind, row.key, row.until) if row else None

    def record_failure(self, username: str, address: str) -> Lockout | None:
        """Count a failed sign-in; returns the lockout it triggers, if any (recorded and logged)."""
        st = self.db.settings
        now = self.db.now()
        since = now - timedelta(minutes=st.login_window_minutes)
        until = now + timedelta(minutes=st.login_lockout_minutes)
        with self.db.write() as s:
            s.add(LoginFailure(username=username, address=address, at=now))
            s.flush()
            for kind, key, column, limit in (("account", username, LoginFailure.username, st.login_max_failures),
                                             ("address", address, LoginFailure.address,
                                              st.login_address_max_failures)):
                count = s.scalar(select(func.count()).select_from(LoginFailure)
                                 .where(column == key, LoginFailure.at > since)) or 0
                if count >= limit:
                    s.add(LoginLockout(kind=kind, key=key, failures=count, created_at=now, until=until))
                    # Counted afresh after the lockout: the next lockout needs as many new failures.
                    s.execute(delete(LoginFailure).where(column == key))
                    log.warning("sign-in lockout: %s %r after %d failed attempts, until %s",
                                kind, key, count, until.isoformat(timespec="seconds"))
                    return Lockout(kind, key, until)
        return None

    def record_success(self, username: str) -> None:
        """A correct password: the account's failure count starts again."""
        with self.db.write() as s:
            s.execute(delete(LoginFailure).where(LoginFailure.username == username))
