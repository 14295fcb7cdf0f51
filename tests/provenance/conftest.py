"""Fixtures for provenance tests: a tracker in a fresh SAHAYAK_HOME and a turn factory."""

from __future__ import annotations

import itertools
import os
import secrets
from pathlib import Path
from typing import Any, Callable

import pytest

from app.core.net import free_port
from app.core.settings import get_settings, reset_settings
from app.ops.graph import start_graph_server
from privacy.redact import redact
from provenance.graph import driver
from provenance.tracker import Tracker

_counter = itertools.count()


def turn_fields(i: int | None = None, session: str = "sess-1", user: str | None = "asha", **over: Any) -> dict[str, Any]:
    """Keyword arguments of one realistic record_turn call."""
    i = next(_counter) if i is None else i
    fields = dict(
        turn_id=f"turn-{i}", session_id=session, user_id=user, channel="cli",
        text=f"send 2500 to Ravi, my phone is 9876543210 ({i})",
        chatml=[{"role": "system", "content": "You are Sahayak"}, {"role": "user", "content": "send 2500"}],
        intent="Transfer_Money", confidence=0.91 - (i % 7) * 0.1, entities={"amount": {"value": 2500.0, "currency": "INR"},
                                                                         "beneficiary": "Ravi"},
        handler="transfer_money", outcome="success", state="done", reply="Sent ₹2,500 to Ravi.",
        passages=[{"doc_id": "fees", "chunk_id": f"fees#{i % 3}", "chunk_hash": f"h{i % 3}",
                   "scores": {"bm25": 3.2, "dense": 0.71, "rerank": 0.93}}],
        scoring_request_id=None, latency_ms=12.5, model_versions={"intent": "frozen-minilm@1"}, timestamp=None,
    )
    fields.update(over)
    return fields


@pytest.fixture()
def make_tracker(fresh_home: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """Build trackers over the test's own SAHAYAK_HOME (closed at the end)."""
    made: list[Any] = []

    def make(**env: Any) -> Tracker:
        for k, v in env.items():
            monkeypatch.setenv(f"SAHAYAK_{k.upper()}", str(v))
        reset_settings()
        t = Tracker(get_settings(), redactor=redact)
        made.append(t)
        return t

    yield make
    for t in made:
        try:
            t.close(timeout=10)
        except Exception:  # noqa: BLE001 - tests that break the log on purpose
            pass


class _Holder:
    server = None
    port = 0
    data_dir: Path | None = None


@pytest.fixture(scope="session")
def bolt_server(tmp_path_factory: pytest.TempPathFactory):
    """The embedded ArcadeDB Bolt server for the whole test session (a failure to start fails)."""
    holder = _Holder()
    holder.port = free_port()
    holder.data_dir = tmp_path_factory.mktemp("graph")
    os.environ["SAHAYAK_NEO4J_URI"] = f"bolt://127.0.0.1:{holder.port}"
    # One server for the session, while each test has its own SAHAYAK_HOME (and so its own
    # generated graph password): the session's random password is given as the override.
    os.environ.setdefault("SAHAYAK_NEO4J_PASSWORD", secrets.token_urlsafe(24))
    reset_settings()
    try:
        holder.server = start_graph_server(get_settings(), data_dir=holder.data_dir, reuse=False, timeout=180)
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"embedded Bolt graph server (arcadedb-embedded) could not start: {exc}")
    yield holder
    holder.server.stop()


@pytest.fixture()
def graph(bolt_server, fresh_home: Path):
    """An empty graph and settings pointing at it."""
    os.environ["SAHAYAK_NEO4J_URI"] = f"bolt://127.0.0.1:{bolt_server.port}"
    reset_settings()
    settings = get_settings()
    with driver(settings) as drv, drv.session(database=settings.neo4j_database) as s:
        s.run("MATCH (n) DETACH DELETE n").consume()
    return settings
