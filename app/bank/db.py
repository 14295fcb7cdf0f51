"""Database plumbing for the bank core: engines, sessions, schema creation, retries.

Any SQLAlchemy URL works (``SAHAYAK_DATABASE_URL``); the default is SQLite under
``settings.home``. SQLite gets WAL mode, a busy timeout and foreign keys, and write
transactions start with ``BEGIN IMMEDIATE`` so concurrent writers queue for the write lock
instead of failing half-way (a deferred transaction that reads and then writes cannot
upgrade its lock if another writer committed in between). PostgreSQL uses row locks
(``SELECT … FOR UPDATE``) taken by the service.
"""

from __future__ import annotations

import random
import threading
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterator, TypeVar

from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from app.bank import models
from app.bank.clock import utcnow
from app.core.settings import Settings, get_settings

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_S = 30.0
_WRITE_OPTION = "sahayak_write"  # execution option: this transaction will write (SQLite: BEGIN IMMEDIATE)


_engines: dict[str, Engine] = {}
_factories: dict[str, sessionmaker[Session]] = {}
_lock = threading.Lock()
_initialised: set[str] = set()


def _resolve_url(url: str | None) -> str:
    if url:
        return url
    settings = get_settings()
    if settings.database_url is None:
        settings.home.mkdir(parents=True, exist_ok=True)
    return settings.db_url


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        database = make_url(url).database
        in_memory = not database or database == ":memory:" or "mode=memory" in url
        connect_args = {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S}
        if in_memory:
            # One shared connection, or every connection would see its own empty database.
            engine = create_engine(url, connect_args=connect_args, poolclass=StaticPool)
        else:
            if not database.startswith("file:"):
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args=connect_args, pool_size=8, max_overflow=24, pool_timeout=120)

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
            # Take transaction control away from the sqlite3 module so SQLAlchemy's
            # "begin" event below decides between BEGIN and BEGIN IMMEDIATE.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            if not in_memory:
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            write = conn.get_execution_options().get(_WRITE_OPTION, False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=24, pool_timeout=120)


def get_engine(url: str | None = None) -> Engine:
    """The engine for ``url`` (default: ``settings.db_url``), created once per URL."""
    url = _resolve_url(url)
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = _make_engine(url)
        return engine


def dispose_engines(url: str | None = None) -> None:
    """Close the cached engine of ``url`` (all cached engines when ``url`` is None).

    Tests call this so that a database can be dropped without pooled connections in the way.
    """
    with _lock:
        urls = [u for u in _engines if url is None or u == url]
        for u in urls:
            _engines.pop(u).dispose()
            _initialised.discard(u)
            for key in [k for k in _factories if k.split("|", 1)[1] == u]:
                del _factories[key]


def session_factory(url: str | None = None, *, write: bool = False) -> sessionmaker[Session]:
    """A session maker bound to the engine for ``url``.

    ``write=True`` marks its transactions as writing: on SQLite they begin with
    ``BEGIN IMMEDIATE`` (one writer at a time, waiting up to the busy timeout).
    """
    url = _resolve_url(url)
    key = f"{'w' if write else 'r'}|{url}"
    with _lock:
        factory = _factories.get(key)
    if factory is None:
        engine = get_engine(url)
        bind = engine.execution_options(**{_WRITE_OPTION: True}) if write else engine
        factory = sessionmaker(bind=bind, expire_on_commit=False)
        with _lock:
            _factories.setdefault(key, factory)
    return factory


@contextmanager
def session_scope(url: str | None = None, *, write: bool = False) -> Iterator[Session]:
    """A session in one transaction: committed on success, rolled back on any error."""
    session = session_factory(url, write=write)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def init_db(url: str | None = None) -> Engine:
    """Create every bank table that does not exist yet (idempotent) and return the engine."""
    url = _resolve_url(url)
    engine = get_engine(url)
    if url not in _initialised:
        models.Base.metadata.create_all(engine)
        with _lock:
            _initialised.add(url)
    return engine


def drop_all(url: str | None = None) -> None:
    """Drop every bank table (used by ``reset``)."""
    url = _resolve_url(url)
    models.Base.metadata.drop_all(get_engine(url))
    with _lock:
        _initialised.discard(url)


# PostgreSQL SQLSTATEs worth retrying: serialization failure, deadlock, lock timeout.
_RETRYABLE_SQLSTATES = {"40001", "40P01", "55P03"}


def is_transient(exc: BaseException) -> bool:
    """True for errors that a retry of the whole transaction can fix."""
    if not isinstance(exc, DBAPIError):
        return False
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if sqlstate in _RETRYABLE_SQLSTATES:
        return True
    if isinstance(exc, OperationalError):
        text = str(orig).lower()
        return "database is locked" in text or "database is busy" in text or "database table is locked" in text
    return False


def with_retry(fn: Callable[[], T], *, attempts: int = 8, base_delay: float = 0.02, max_delay: float = 1.0) -> T:
    """Run ``fn`` (one whole transaction), retrying transient lock/serialization errors.

    Backoff is exponential with full jitter so that retrying writers do not collide again.
    """
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except DBAPIError as exc:
            if attempt == attempts or not is_transient(exc):
                raise
            time.sleep(random.uniform(0, min(max_delay, base_delay * 2 ** attempt)))
    raise AssertionError("unreachable")


class Database:
    """One bank database as its services see it: the URL, the settings, the clock, transactions.

    ``url`` defaults to ``settings.db_url``; ``settings`` to :func:`get_settings`; ``clock``
    (returns aware UTC "now") lets tests move time for OTP expiry, day limits and session
    expiry. The schema is created on construction (idempotent). Every part of the bank and
    the conversation's stores share one ``Database``, so they agree on the clock.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        settings: Settings | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        if url is None and self.settings.database_url is None:
            self.settings.home.mkdir(parents=True, exist_ok=True)
        self.url = url or self.settings.db_url
        self._clock = clock or utcnow
        init_db(self.url)

    def ping(self) -> None:
        """Raise unless the database answers a trivial query (readiness checks)."""
        with self.read() as s:
            s.execute(text("SELECT 1"))

    def now(self) -> datetime:
        """This database's notion of now (aware UTC)."""
        return self._clock()

    def read(self) -> ContextManager[Session]:
        """A read transaction (committed on success, rolled back on error)."""
        return session_scope(self.url)

    def write(self) -> ContextManager[Session]:
        """A write transaction (SQLite: ``BEGIN IMMEDIATE``, one writer at a time)."""
        return session_scope(self.url, write=True)
