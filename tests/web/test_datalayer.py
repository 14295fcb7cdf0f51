"""The chat-history data layer redacts PII before anything is written (SQLite and PostgreSQL),
and the turn renderer shows the pipeline without a browser."""

from __future__ import annotations

import asyncio
import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

CARD = "4111 1111 1111 1111"
AADHAAR = "2345 6789 0124"


def _layer(sync_url: str):
    from app.web.datalayer import create_schema, redacting_layer_class

    create_schema(sync_url)
    create_schema(sync_url)  # idempotent
    async_url = sync_url.replace("sqlite://", "sqlite+aiosqlite://", 1) if sync_url.startswith("sqlite") else sync_url
    return redacting_layer_class()(conninfo=async_url)


@pytest.fixture(params=["sqlite", "postgres"])
def chat_db(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'chainlit.db'}"
    url = request.getfixturevalue("postgres_url")
    return url.replace("postgresql+psycopg2://", "postgresql+psycopg://")


def test_everything_written_is_redacted(chat_db: str) -> None:
    from chainlit.types import Feedback
    from chainlit.user import User

    layer = _layer(chat_db)
    thread_id, step_id = str(uuid.uuid4()), str(uuid.uuid4())
    raw = f"my card {CARD} cvv 123 aadhaar {AADHAAR}"

    async def scenario() -> None:
        from chainlit.context import init_http_context

        init_http_context()  # Chainlit's step writes look up the current session
        user = await layer.create_user(User(identifier="asha", metadata={"role": "customer"}))
        await layer.update_thread(thread_id, name=raw, user_id=user.id, metadata={"note": raw}, tags=["web"])
        await layer.create_step({"id": step_id, "threadId": thread_id, "name": "asha", "type": "user_message",
                                 "output": raw, "input": raw, "streaming": False, "metadata": {"echo": raw},
                                 "createdAt": "2026-01-01T00:00:00Z", "tags": ["x"]})
        await layer.upsert_feedback(Feedback(forId=step_id, value=1, threadId=thread_id, comment=raw))
        thread = await layer.get_thread(thread_id)
        assert thread is not None and thread["steps"][0]["output"].startswith("my card XXXX")
        await layer.engine.dispose()

    # Its own thread and loop: the browser tests' Playwright loop may be running in this one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, scenario()).result()
    engine = sa.create_engine(chat_db)
    with engine.connect() as conn:
        dump = json.dumps([[list(map(str, row)) for row in conn.execute(sa.text(f"SELECT * FROM {t}"))]
                           for t in ("users", "threads", "steps", "feedbacks")])
    engine.dispose()
    assert "1111" in dump  # last four kept, masked
    for needle in (CARD, CARD.replace(" ", ""), AADHAAR, AADHAAR.replace(" ", ""), "cvv 123"):
        assert needle not in dump


def test_render_steps_citations_and_scoring() -> None:
    from app.types import TurnResult
    from app.web.render import citations_of, scoring_of, step_outputs

    result = TurnResult(
        intent="FAQ", confidence=0.93, entities={}, handler="FAQ", reply="NEFT runs 24x7.", state="done",
        data={"citations": [{"doc_id": "PAY-NEFT", "title": "NEFT", "chunk_id": "PAY-NEFT#0", "passage": "NEFT 24x7"},
                            {"doc_id": "PAY-NEFT", "title": "NEFT", "chunk_id": "PAY-NEFT#0", "passage": "dup"}],
              "retrieval": {"mode": "hybrid", "passage_ids": ["PAY-NEFT#0"], "doc_ids": ["PAY-NEFT"],
                            "scores": [{"final": 0.81}], "confidence": 0.8, "threshold": 0.5}},
        timings_ms={"total": 42.0})
    names = [n for n, _ in step_outputs(result)]
    assert names == ["Understanding", "Handler", "Retrieval"]
    body = dict(step_outputs(result))
    assert "confidence **93%**" in body["Understanding"]
    assert "`PAY-NEFT#0` (score 0.810)" in body["Retrieval"] and "> NEFT 24x7" in body["Retrieval"]
    assert citations_of(result) == [{"doc_id": "PAY-NEFT", "title": "NEFT", "text": "NEFT\n\nNEFT 24x7"}]
    assert scoring_of(result) is None

    loan = result.model_copy(update={"intent": "Loan_Enquiry", "data": {"scoring_request_id": "req-1"}})
    assert scoring_of(loan) == {"request_id": "req-1"}
    assert [n for n, _ in step_outputs(loan)][-1] == "Encrypted scoring"


def test_staff_routes_come_before_chainlits_catch_all() -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from app.web import staff

    app = FastAPI()

    @app.get("/{full_path:path}")
    def spa(full_path: str) -> dict:
        return {"spa": full_path}

    staff.mount(app)
    staff.mount(app)  # idempotent
    client = TestClient(app)
    r = client.get("/staff", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert client.get("/elsewhere").json() == {"spa": "elsewhere"}


def test_templates_escape_chat_text() -> None:
    from app.web.staff import TEMPLATES

    html = TEMPLATES.get_template("session.html").render(
        staff="meera", session_id="<b>x</b>", problems=[], verification={"signature": True, "chain": True,
                                                                         "checkpoint": None},
        timeline=[{"kind": "turn", "text": "<script>alert(1)</script>", "intent": "FAQ", "confidence": 0.9,
                   "reply": "<img src=x onerror=alert(1)>", "turn_id": "t1", "verified": True}],
        lineage_turn="t1")
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html and "<b>x</b>" not in html
    assert 'id="verify-checkpoint">checkpoint <span class="unknown">?</span>' in html
