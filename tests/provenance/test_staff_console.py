"""Issue 19, findings 3 (a) and 9, over real HTTP: the staff console served by uvicorn on a loopback
port, backed by a real seeded bank, the real signed log and the real Bolt graph.

* A turn rewritten in the graph over Bolt shows ✗ and the signed log's true text, never the forgery.
* Staff open hand-off and flagged sessions directly; any other session needs a stated reason.
* Every read (who, which session, why) is a signed ``staff_read`` record in the log.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Iterator

import httpx
import pytest
import uvicorn

from app.core.net import free_port
from tests.provenance.conftest import turn_fields

pytestmark = pytest.mark.graph

FORGED = "FORGED: customer approved 90000 to mallory"


@pytest.fixture()
def console(graph, fresh_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    """The staff router on a real uvicorn server; the runtime's bank, support store and tracker
    built over this test's SAHAYAK_HOME."""
    from fastapi import FastAPI

    from app.bank.seed import seed
    from app.web import runtime, staff
    from provenance.tracker import reset_tracker

    monkeypatch.setenv("CHAINLIT_AUTH_SECRET", uuid.uuid4().hex * 2)
    seed(graph.db_url)
    reset_tracker()
    for name in ("_assistant", "_bank", "_support"):
        monkeypatch.setattr(runtime, name, None)
    app = FastAPI()
    app.include_router(staff.router)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield {"url": f"http://127.0.0.1:{port}", "settings": graph, "runtime": runtime}
    finally:
        server.should_exit = True
        thread.join(10)
        runtime.close_assistant()
        reset_tracker()


def _cookie(username: str, role: str) -> dict[str, str]:
    from chainlit.auth import create_jwt
    from chainlit.user import User

    return {"access_token": create_jwt(User(identifier=username, metadata={"role": role}))}


def _fill(console: dict) -> None:
    """Three sessions in the signed log and the graph: a hand-off, a flagged one, a quiet one."""
    from app.conversation.support import SupportStore
    from provenance.graph import Importer

    runtime = console["runtime"]
    tracker = runtime.get_assistant().tracker
    for i in range(3):
        tracker.record_turn(**turn_fields(100 + i, session="sess-handoff", confidence=0.95))
    tracker.record_turn(**turn_fields(200, session="sess-flagged", confidence=0.21))
    for i in range(2):
        tracker.record_turn(**turn_fields(300 + i, session="sess-quiet", confidence=0.97))
    SupportStore(runtime.get_bank().db).create_handoff("sess-handoff", "asha", "wants a person", "User: help")
    tracker.flush(timeout=30)
    imp = Importer(console["settings"])
    try:
        assert imp.run_once() >= 6
    finally:
        imp.close()


def _staff_reads(settings) -> list[dict]:
    from provenance.verify import verify_log

    v = verify_log(settings.provenance_dir, settings=settings)
    assert v.ok, v.report()["failures"]
    return [r.record for r in v.records if r.type == "event" and r.record.get("kind") == "staff_read"]


def test_rewritten_graph_turn_shows_cross_and_the_signed_text(console: dict) -> None:
    from provenance.graph import driver
    from provenance.tracker import pseudonym

    _fill(console)
    settings = console["settings"]
    with driver(settings) as drv, drv.session(database=settings.neo4j_database) as s:
        s.run("MATCH (t:Turn {id: $id}) SET t.input = $forged, t.reply = $forged, t.intent = 'Greeting'",
              id="turn-101", forged=FORGED).consume()
        assert s.run("MATCH (t:Turn {id: 'turn-101'}) RETURN t.input AS i").single()["i"] == FORGED
    r = httpx.get(f"{console['url']}/staff/session/sess-handoff", cookies=_cookie("meera", "staff"), timeout=60)
    assert r.status_code == 200, r.text[:500]
    html = r.text
    assert FORGED not in html  # the forged text is never shown
    assert "(101)" in html and "+91XXXXXX3210" in html  # the signed log's (redacted) text of that turn is
    assert 'id="verify-graph">graph matches log <span class="bad">✗' in html
    assert html.count('class="turn tampered"') == 1 and "✗ graph differs: input, reply, intent" in html
    assert 'id="verify-signature">signature <span class="ok">✓' in html  # the log itself is intact
    # The read was recorded: who, which session, why.
    reads = _staff_reads(settings)
    assert [(x["staff"], x["scope"], x["route"], x["session"]) for x in reads] == [
        ("meera", "handoff", "session", pseudonym(settings, "sess-handoff", "s_"))]


def test_untouched_graph_shows_ticks(console: dict) -> None:
    _fill(console)
    r = httpx.get(f"{console['url']}/staff/session/sess-handoff", cookies=_cookie("meera", "staff"), timeout=60)
    assert r.status_code == 200
    assert 'id="verify-graph">graph matches log <span class="ok">✓' in r.text and "tampered" not in r.text


def test_staff_reads_are_scoped_and_recorded(console: dict) -> None:
    from provenance.tracker import pseudonym

    _fill(console)
    settings, url, staff = console["settings"], console["url"], _cookie("meera", "staff")
    # A flagged session (a low-confidence turn) opens directly.
    r = httpx.get(f"{url}/staff/session/sess-flagged", cookies=staff, timeout=60)
    assert r.status_code == 200 and "(200)" in r.text and "Opened as: flagged" in r.text
    # A session outside the queue asks for a reason and shows nothing of the conversation.
    r = httpx.get(f"{url}/staff/session/sess-quiet", cookies=staff, timeout=60)
    assert r.status_code == 403 and 'id="reason-form"' in r.text
    assert "(300)" not in r.text and "Ravi" not in r.text
    r = httpx.get(f"{url}/staff/session/sess-quiet", params={"reason": "just   "}, cookies=staff, timeout=60)
    assert r.status_code == 403 and 'id="reason-too-short"' in r.text and "(300)" not in r.text
    # Its pseudonym (how the overview links it) is no way around the rule.
    pseud = pseudonym(settings, "sess-quiet", "s_")
    assert httpx.get(f"{url}/staff/session/{pseud}", cookies=staff, timeout=60).status_code == 403
    reason = "customer phoned about a disputed transfer, ticket 4821"
    r = httpx.get(f"{url}/staff/session/{pseud}", params={"reason": reason}, cookies=staff, timeout=60)
    assert r.status_code == 200 and "(300)" in r.text and "(301)" in r.text
    # A customer (even one whose token claims the staff role) never gets in, and leaves no read behind.
    assert httpx.get(f"{url}/staff/session/sess-flagged", cookies=_cookie("asha", "staff"),
                     timeout=60).status_code == 403
    reads = _staff_reads(settings)
    assert [(x["staff"], x["scope"], x["session"], x.get("reason")) for x in reads] == [
        ("meera", "flagged", pseudonym(settings, "sess-flagged", "s_"), None),
        ("meera", "reason", pseud, reason),
    ]
    # The next read of that session lists the earlier one (auditors and staff see who looked, and why).
    r = httpx.get(f"{url}/staff/session/{pseud}", params={"reason": "second look for the same dispute"},
                  cookies=staff, timeout=60)
    assert r.status_code == 200 and 'id="reads"' in r.text and reason in r.text
