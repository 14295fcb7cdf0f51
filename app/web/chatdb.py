"""The chat-history database: where it lives and the tables Chainlit's SQLAlchemy data layer needs.

Chainlit does not create its tables; :func:`create_schema` does (idempotent). The schema follows
the columns Chainlit 2.x's ``SQLAlchemyDataLayer`` reads and writes; lists (tags) are stored as
JSON text so one schema works on SQLite and PostgreSQL. Kept apart from the data layer itself
(:mod:`app.web.datalayer`) so ``sahayak prepare`` creates the schema without loading the web stack.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from app.core.settings import Settings, get_settings

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
