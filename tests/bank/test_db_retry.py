"""The transaction retry helper against real lock conflicts (SQLite busy, PostgreSQL lock timeout)."""

from __future__ import annotations

import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from app.bank.db import dispose_engines, get_engine, is_transient, session_scope, with_retry


def test_sqlite_locked_database_is_retried(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE t (n INTEGER)")
    holder.execute("BEGIN IMMEDIATE")  # hold the write lock
    holder.execute("INSERT INTO t VALUES (1)")
    # An engine that gives up at once instead of waiting, so the conflict surfaces as an error.
    engine = sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": 0})

    def write() -> int:
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO t VALUES (2)"))
            return conn.execute(sa.text("SELECT COUNT(*) FROM t")).scalar_one()

    with pytest.raises(OperationalError) as err:
        write()
    assert "locked" in str(err.value) and is_transient(err.value)

    threading.Timer(0.15, holder.commit).start()  # the other writer finishes shortly
    assert with_retry(write, attempts=12, base_delay=0.02) == 2
    holder.close()
    engine.dispose()


def test_postgres_lock_timeout_is_retried(postgres_url: str) -> None:
    with session_scope(postgres_url, write=True) as s:
        s.execute(sa.text("CREATE TABLE IF NOT EXISTS retry_probe (id INT PRIMARY KEY, n INT)"))
        s.execute(sa.text("DELETE FROM retry_probe"))
        s.execute(sa.text("INSERT INTO retry_probe VALUES (1, 0)"))
    engine = sa.create_engine(postgres_url)
    holder = engine.connect()
    tx = holder.begin()
    holder.execute(sa.text("SELECT n FROM retry_probe WHERE id = 1 FOR UPDATE"))

    def bump() -> int:
        with engine.begin() as conn:
            conn.execute(sa.text("SET LOCAL lock_timeout = '50ms'"))
            return conn.execute(sa.text("UPDATE retry_probe SET n = n + 1 WHERE id = 1 RETURNING n")).scalar_one()

    with pytest.raises(OperationalError) as err:
        bump()
    assert is_transient(err.value)  # SQLSTATE 55P03 lock_not_available

    threading.Timer(0.2, tx.commit).start()
    assert with_retry(bump, attempts=12, base_delay=0.05) == 1
    holder.close()
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE retry_probe"))
    engine.dispose()


def test_non_transient_errors_are_not_retried(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    calls = []

    def bad() -> None:
        calls.append(1)
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT * FROM no_such_table"))

    with pytest.raises(OperationalError):
        with_retry(bad)
    assert len(calls) == 1
    engine.dispose()


def test_sqlite_write_sessions_serialise_read_modify_write(tmp_path: Path) -> None:
    """Write sessions begin IMMEDIATE: read-then-write transactions queue instead of failing or losing updates."""
    url = f"sqlite:///{tmp_path / 'counter.db'}"
    with get_engine(url).begin() as conn:
        conn.execute(sa.text("CREATE TABLE counter (n INTEGER)"))
        conn.execute(sa.text("INSERT INTO counter VALUES (0)"))
    barrier = threading.Barrier(10)

    def increment(_: int) -> None:
        barrier.wait()
        with session_scope(url, write=True) as s:  # no retry helper: the lock alone must suffice
            n = s.execute(sa.text("SELECT n FROM counter")).scalar_one()
            time.sleep(0.01)  # widen the window between the read and the write
            s.execute(sa.text("UPDATE counter SET n = :n"), {"n": n + 1})

    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(increment, range(10)))
    with session_scope(url) as s:
        assert s.execute(sa.text("SELECT n FROM counter")).scalar_one() == 10
    dispose_engines(url)
