"""The dialogue's session store: one row per conversation (state as JSON, ChatML history).

Sessions live in the bank's database (table ``dialogue_sessions``, :class:`~app.bank.models.DialogueSession`)
so that separate ``sahayak turn`` processes continue one conversation; they expire after
``settings.session_ttl_minutes`` of inactivity.
"""

from __future__ import annotations

import json
from dataclasses import asdict, is_dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import IntegrityError

from app.bank.db import Database, with_retry
from app.bank.models import DialogueSession
from privacy.redact import redact


class DialogueSessionView(BaseModel):
    """A saved dialogue session (a detached copy)."""

    model_config = ConfigDict(frozen=True)

    session_id: str
    user_id: str | None
    channel: str
    state: dict[str, Any]
    chatml: str
    created_at: datetime
    updated_at: datetime
    expires_at: datetime


def _json_default(value: Any) -> Any:
    # Dialogue state holds amounts, dates and small dataclasses/enums; keep them readable.
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, Enum):
        return value.value
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"dialogue state value of type {type(value).__name__} is not JSON-serialisable")


def _session_view(row: DialogueSession) -> DialogueSessionView:
    return DialogueSessionView(
        session_id=row.session_id, user_id=row.user_id, channel=row.channel, state=json.loads(row.state or "{}"),
        chatml=row.chatml or "", created_at=row.created_at, updated_at=row.updated_at, expires_at=row.expires_at,
    )


class SessionStore:
    """Load, save and delete dialogue sessions, each call in its own transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def load(self, session_id: str, *, include_expired: bool = False) -> DialogueSessionView | None:
        """The saved dialogue session, or ``None`` if unknown or idle past ``session_ttl_minutes``."""
        with self.db.read() as s:
            row = s.get(DialogueSession, session_id)
            if row is None or (not include_expired and row.expires_at <= self.db.now()):
                return None
            return _session_view(row)

    def save(
        self, session_id: str, user_id: str | None, channel: str, state: dict[str, Any], chatml: str
    ) -> DialogueSessionView:
        """Create or replace a dialogue session; each save extends its expiry by the TTL.

        ``chatml`` is redacted before it is written. ``state`` must be JSON-serialisable (Decimal, datetime, date, set, Enum, dataclasses
        and pydantic models are converted: Decimal becomes a string).
        """
        payload = json.dumps(state, default=_json_default, ensure_ascii=False, sort_keys=True)
        # The caller redacts each message; the history is redacted again as it is stored (idempotent),
        # so no code path can write a card or Aadhaar number into the session table.
        chatml = redact(chatml) if chatml else chatml
        ttl = timedelta(minutes=self.db.settings.session_ttl_minutes)

        def run() -> DialogueSessionView:
            with self.db.write() as s:
                now = self.db.now()
                row = s.get(DialogueSession, session_id, with_for_update=True)
                if row is None:
                    row = DialogueSession(session_id=session_id, created_at=now)
                    s.add(row)
                row.user_id, row.channel, row.state, row.chatml = user_id, channel, payload, chatml
                row.updated_at = now
                row.expires_at = now + ttl
                s.flush()
                return _session_view(row)

        try:
            return with_retry(run)
        except IntegrityError:  # two first saves of one session raced; the row exists now
            return with_retry(run)

    def delete(self, session_id: str) -> bool:
        """Forget a dialogue session (logout); True if there was one."""
        with self.db.write() as s:
            row = s.get(DialogueSession, session_id)
            if row is None:
                return False
            s.delete(row)
            return True
