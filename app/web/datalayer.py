"""Chat history persistence for the Chainlit app: Chainlit's SQLAlchemy data layer, redacted.

Chainlit stores every message (``steps``), the thread (its name is the first user message),
elements and feedback. It persists the user's message *before* ``on_message`` runs, so the only
safe place to redact is the data layer itself: every text that reaches the database goes through
``privacy.redact`` here, whatever Chainlit code path wrote it. No full card number, CVV or
Aadhaar number is ever stored.

Chainlit does not create its tables; :func:`create_schema` does (idempotent). The schema follows
the columns Chainlit 2.x's ``SQLAlchemyDataLayer`` reads and writes; lists (tags) are stored as
JSON text so one schema works on SQLite and PostgreSQL.

Element contents (the cited passages) go to :class:`app.web.files.LocalStorageClient`, so a
reopened thread still shows its sources. One-time codes are never stored: the demo-SMS element
(:data:`EPHEMERAL_ELEMENTS`) is shown live and skipped here.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from app.core.settings import Settings, get_settings
from app.web.files import storage_client
from privacy.redact import redact, redact_obj

if TYPE_CHECKING:
    from chainlit.element import Element
    from chainlit.step import StepDict
    from chainlit.types import Feedback

# Elements shown live but never persisted: the demo SMS carries a one-time password.
EPHEMERAL_ELEMENTS = frozenset({"Demo SMS"})

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS users (
        "id" TEXT PRIMARY KEY,
        "identifier" TEXT NOT NULL UNIQUE,
        "metadata" TEXT NOT NULL,
        "createdAt" TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS threads (
        "id" TEXT PRIMARY KEY,
        "createdAt" TEXT,
        "name" TEXT,
        "userId" TEXT REFERENCES users("id") ON DELETE CASCADE,
        "userIdentifier" TEXT,
        "tags" TEXT,
        "metadata" TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS steps (
        "id" TEXT PRIMARY KEY,
        "name" TEXT NOT NULL,
        "type" TEXT NOT NULL,
        "threadId" TEXT NOT NULL REFERENCES threads("id") ON DELETE CASCADE,
        "parentId" TEXT,
        "streaming" BOOLEAN NOT NULL,
        "waitForAnswer" BOOLEAN,
        "isError" BOOLEAN,
        "metadata" TEXT,
        "tags" TEXT,
        "input" TEXT,
        "output" TEXT,
        "createdAt" TEXT,
        "command" TEXT,
        "modes" TEXT,
        "start" TEXT,
        "end" TEXT,
        "generation" TEXT,
        "showInput" TEXT,
        "language" TEXT,
        "indent" INTEGER,
        "defaultOpen" BOOLEAN,
        "autoCollapse" BOOLEAN,
        "icon" TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS elements (
        "id" TEXT PRIMARY KEY,
        "threadId" TEXT REFERENCES threads("id") ON DELETE CASCADE,
        "type" TEXT,
        "url" TEXT,
        "chainlitKey" TEXT,
        "name" TEXT NOT NULL,
        "display" TEXT,
        "objectKey" TEXT,
        "size" TEXT,
        "page" INTEGER,
        "language" TEXT,
        "forId" TEXT,
        "mime" TEXT,
        "props" TEXT,
        "path" TEXT,
        "autoPlay" BOOLEAN,
        "playerConfig" TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS feedbacks (
        "id" TEXT PRIMARY KEY,
        "forId" TEXT NOT NULL,
        "threadId" TEXT REFERENCES threads("id") ON DELETE CASCADE,
        "value" INTEGER NOT NULL,
        "comment" TEXT
    )""",
    'CREATE INDEX IF NOT EXISTS ix_steps_thread ON steps ("threadId")',
    'CREATE INDEX IF NOT EXISTS ix_threads_user ON threads ("userId")',
]


def chat_db_urls(settings: Settings | None = None) -> tuple[str, str]:
    """(async URL for Chainlit, sync URL for schema creation) of the chat-history database.

    Same database family as the bank: SQLite file ``$SAHAYAK_HOME/chainlit.db`` by default, or —
    when the bank runs on PostgreSQL — the same PostgreSQL database (psycopg 3 is async-capable).
    """
    s = settings or get_settings()
    url = s.db_url
    if url.startswith("postgresql"):
        rest = url.split("://", 1)[1]
        pg = f"postgresql+psycopg://{rest}"
        return pg, pg
    path = (Path(s.home) / "chainlit.db").resolve()
    return f"sqlite+aiosqlite:///{path}", f"sqlite:///{path}"


def create_schema(sync_url: str) -> None:
    """Create Chainlit's tables if they are missing (Chainlit never creates them itself)."""
    engine = sa.create_engine(sync_url)
    try:
        with engine.begin() as conn:
            for stmt in SCHEMA:
                conn.execute(sa.text(stmt))
    finally:
        engine.dispose()


def _redact_text(value: Any) -> Any:
    return redact(value) if isinstance(value, str) and value else value


def _redact_any(value: Any) -> Any:
    return redact_obj(value) if value else value


def _tags(value: Any) -> Any:
    # Chainlit passes tags as a Python list (a TEXT[] column in its own schema); JSON keeps one schema.
    return json.dumps(value) if isinstance(value, (list, tuple)) else value


@lru_cache(maxsize=1)
def redacting_layer_class() -> type:
    """``SQLAlchemyDataLayer`` subclass that redacts PII from everything it writes.

    Built lazily so importing this module never imports Chainlit (whose import writes config files).
    """
    from chainlit.data.sql_alchemy import SQLAlchemyDataLayer

    class RedactingDataLayer(SQLAlchemyDataLayer):
        """``SQLAlchemyDataLayer`` that redacts PII from everything it writes."""

        async def create_step(self, step_dict: "StepDict") -> None:
            clean = dict(step_dict)
            for key in ("input", "output", "name"):
                clean[key] = _redact_text(clean.get(key))
            if clean.get("metadata"):
                clean["metadata"] = _redact_any(clean["metadata"])
            if clean.get("generation"):
                clean["generation"] = _redact_any(clean["generation"])
            clean["tags"] = _tags(clean.get("tags"))
            if isinstance(clean.get("modes"), dict):
                clean["modes"] = json.dumps(clean["modes"])
            clean.pop("feedback", None)  # not a column; feedback lives in its own table
            await super().create_step(clean)  # type: ignore[arg-type]

        async def update_thread(self, thread_id: str, name: str | None = None, user_id: str | None = None,
                                metadata: dict | None = None, tags: list[str] | None = None) -> None:
            await super().update_thread(
                thread_id, name=_redact_text(name), user_id=user_id,
                metadata=_redact_any(metadata) if metadata else metadata,
                tags=_tags(tags))  # type: ignore[arg-type]

        async def create_element(self, element: "Element") -> None:
            if element.name in EPHEMERAL_ELEMENTS:
                return
            content = getattr(element, "content", None)
            if isinstance(content, str):
                element.content = _redact_text(content)
            await super().create_element(element)

        async def upsert_feedback(self, feedback: "Feedback") -> str:
            if feedback.comment:
                feedback.comment = _redact_text(feedback.comment)
            return await super().upsert_feedback(feedback)

    return RedactingDataLayer


def make_data_layer(settings: Settings | None = None) -> Any:
    """Build the redacting data layer for this installation (creating its schema first),
    with element contents in the local file store (:mod:`app.web.files`)."""
    s = settings or get_settings()
    async_url, sync_url = chat_db_urls(s)
    s.ensure_dirs()
    create_schema(sync_url)
    return redacting_layer_class()(conninfo=async_url, storage_provider=storage_client(s))
