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


def _feedback(console: dict) -> list:
    from app.conversation.support import SupportStore

    return SupportStore(console["runtime"].get_bank().db).list_feedback()


def test_staff_correct_an_intent_and_export_feedback_sees_it(console: dict, tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    import yaml

    from provenance.tracker import pseudonym

    _fill(console)
    settings, url, staff = console["settings"], console["url"], _cookie("meera", "staff")
    page = httpx.get(f"{url}/staff/session/sess-handoff", cookies=staff, timeout=60)
    action = "/staff/session/sess-handoff/turn/turn-101/correct"
    assert page.status_code == 200 and f'action="{action}"' in page.text and "form-action 'self'" in \
        page.headers["content-security-policy"]
    r = httpx.post(url + action, data={"correct_intent": "Check_Balance", "comment": "asked for the balance"},
                   cookies=staff, headers={"Origin": url}, timeout=60)
    assert r.status_code == 303 and r.headers["location"].startswith("/staff/session/sess-handoff?corrected=turn-101")
    follow = httpx.get(url + r.headers["location"], cookies=staff, timeout=60)
    assert follow.status_code == 200 and 'id="correction-recorded"' in follow.text
    rows = _feedback(console)
    assert len(rows) == 1
    fb = rows[0]
    assert (fb.turn_id, fb.predicted_intent, fb.correct_intent, fb.rating) == ("turn-101", "Transfer_Money",
                                                                                "Check_Balance", -1)
    assert "9876543210" not in fb.text and "(101)" in fb.text and "meera" in fb.comment
    # The signed correction record: who corrected which turn, from what to what.
    from provenance.verify import verify_log

    v = verify_log(settings.provenance_dir, settings=settings)
    assert v.ok
    corr = [x.record for x in v.records if x.record.get("kind") == "intent_correction"]
    assert len(corr) == 1 and corr[0]["staff"] == "meera" and corr[0]["turn_id"] == "turn-101"
    assert corr[0]["session"] == pseudonym(settings, "sess-handoff", "s_") and corr[0]["feedback_id"] == fb.id
    assert (corr[0]["predicted_intent"], corr[0]["correct_intent"]) == ("Transfer_Money", "Check_Balance")
    # `sahayak intents export-feedback` (a real subprocess on the same installation) sees it.
    out = tmp_path / "feedback.yaml"
    root = Path(__file__).resolve().parents[2]
    res = subprocess.run([sys.executable, "-m", "app.cli", "intents", "export-feedback", "--out", str(out)], cwd=root,
                         env=dict(os.environ, SAHAYAK_HOME=str(settings.home)), capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["per_intent"] == {"Check_Balance": 1}
    doc = yaml.safe_load(out.read_text())
    assert doc["intents"][0]["intent"] == "Check_Balance" and doc["intents"][0]["examples"] == [fb.text]


def test_intent_corrections_refuse_cross_site_and_bad_requests(console: dict) -> None:
    _fill(console)
    url, staff = console["url"], _cookie("meera", "staff")
    action = f"{url}/staff/session/sess-handoff/turn/turn-101/correct"
    good = {"correct_intent": "Check_Balance"}
    # Cross-site (another origin, or no Origin/Referer at all): refused before the login is even looked at.
    assert httpx.post(action, data=good, cookies=staff, headers={"Origin": "http://evil.example"},
                      timeout=60).status_code == 403
    assert httpx.post(action, data=good, cookies=staff, headers={"Referer": "http://evil.example/x"},
                      timeout=60).status_code == 403
    assert httpx.post(action, data=good, cookies=staff, timeout=60).status_code == 403
    same = {"Origin": url}
    # Not logged in → the login page; a customer → 403.
    r = httpx.post(action, data=good, headers=same, timeout=60)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert httpx.post(action, data=good, cookies=_cookie("asha", "staff"), headers=same, timeout=60).status_code == 403
    # Unknown intent, the intent it already has, a turn of another session, a session out of scope.
    assert httpx.post(action, data={"correct_intent": "Steal_Money"}, cookies=staff, headers=same,
                      timeout=60).status_code == 400
    assert httpx.post(action, data={"correct_intent": "Transfer_Money"}, cookies=staff, headers=same,
                      timeout=60).status_code == 400
    assert httpx.post(f"{url}/staff/session/sess-handoff/turn/turn-300/correct", data=good, cookies=staff,
                      headers=same, timeout=60).status_code == 404
    quiet = f"{url}/staff/session/sess-quiet/turn/turn-300/correct"
    assert httpx.post(quiet, data=good, cookies=staff, headers=same, timeout=60).status_code == 403
    assert _feedback(console) == []
    r = httpx.post(quiet, data={**good, "reason": "customer phoned: it was a balance question"}, cookies=staff,
                   headers=same, timeout=60)
    assert r.status_code == 303 and "reason=" in r.headers["location"]
    assert [f.turn_id for f in _feedback(console)] == ["turn-300"]


def test_correction_loop_end_to_end(console: dict, tmp_path: Path) -> None:
    """correction (HTTP) → export-feedback → retrain (CLI) → signed records → the graph shows the new
    model derived from the correction. The CLI processes write the same log the console's tracker has open."""
    import json
    import os
    import subprocess
    import sys

    import yaml

    from provenance.graph import Importer
    from provenance.queries import Audit
    from provenance.verify import verify_log

    _fill(console)
    settings, url, staff = console["settings"], console["url"], _cookie("meera", "staff")
    r = httpx.post(f"{url}/staff/session/sess-handoff/turn/turn-102/correct", data={"correct_intent": "Check_Balance"},
                   cookies=staff, headers={"Origin": url}, timeout=60)
    assert r.status_code == 303
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, SAHAYAK_HOME=str(settings.home), SAHAYAK_AGENT="system:retrain", HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1")

    def cli(*args: str) -> dict:
        res = subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=root, env=env, capture_output=True,
                             text=True, timeout=600)
        assert res.returncode == 0, res.stderr
        return json.loads(res.stdout.strip().splitlines()[-1])

    data = tmp_path / "data"
    data.mkdir()
    for label, texts in {"Check_Balance": ["what is my balance", "show my balance", "balance please"],
                         "Transfer_Money": ["send 500 to Ravi", "transfer 2000 to Asha", "pay Ravi 300"]}.items():
        (data / f"{label}.yaml").write_text(yaml.safe_dump({"intent": label, "description": label, "examples": texts}))
    exported = cli("intents", "export-feedback", "--out", str(data / "feedback.yaml"))
    assert exported["per_intent"] == {"Check_Balance": 1} and len(exported["provenance"]["derived_from"]) == 1
    trained = cli("intents", "train", "--data", str(data), "--fast", "--out", str(tmp_path / "retrained"))
    model = trained["provenance"]["model"]
    assert model.startswith("intents@")
    assert verify_log(settings.provenance_dir, settings=settings).ok  # one chain across the three processes
    imp = Importer(settings)
    try:
        imp.run_once()
    finally:
        imp.close()
    with Audit(settings) as a:
        rows = a.cypher("""MATCH (e:Event)<-[:DERIVED_FROM]-(d:Dataset)<-[:USED]-(t:Training)<-[:WAS_GENERATED_BY]-(m:Model)
            MATCH (d)-[:USED_IN]->(m) MATCH (m)-[:ATTRIBUTED_TO]->(g:Agent)
            RETURN e.kind AS kind, e.staff AS staff, d.path AS dataset, m.id AS model, g.id AS agent,
                   t.started_at AS started, t.ended_at AS ended""")
    assert len(rows) == 1, rows
    row = rows[0]
    assert (row["kind"], row["staff"], row["model"], row["agent"]) == ("intent_correction", "meera", model,
                                                                        "system:retrain")
    assert row["dataset"].endswith("feedback.yaml") and row["started"] <= row["ended"]


def test_monitoring_page_shows_the_per_day_table(console: dict) -> None:
    _fill(console)
    r = httpx.get(f"{console['url']}/staff/monitoring", cookies=_cookie("meera", "staff"), timeout=120)
    assert r.status_code == 200 and 'id="over-time"' in r.text and "(reference)" in r.text
