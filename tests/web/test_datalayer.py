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


def _run(coro):
    """Run a coroutine on its own thread and loop (a browser test's Playwright loop may own this one)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


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
    from app.core.types import TurnResult
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


def test_our_routes_come_before_chainlits_catch_all() -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from app.web.routes import mount_all

    app = FastAPI()

    @app.get("/{full_path:path}")
    def spa(full_path: str) -> dict:
        return {"spa": full_path}

    mount_all(app)
    n = len(app.router.routes)
    mount_all(app)  # idempotent
    assert len(app.router.routes) == n
    client = TestClient(app)
    r = client.get("/staff", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    r = client.get("/logo?theme=dark")
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg") and b"Sahayak" in r.content
    assert client.get("/chat-files/u/e/x?expires=1&sig=00").status_code == 403  # expired, forged
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


def test_cited_passages_are_stored_and_one_time_codes_are_not(chat_db: str, tmp_path) -> None:
    """Citation elements survive a reopened thread (content in the file store, redacted);
    the demo-SMS element with its OTP is never written anywhere."""
    from chainlit.element import Text
    from chainlit.user import User

    from app.web.datalayer import EPHEMERAL_ELEMENTS
    from app.web.files import LocalStorageClient

    store = LocalStorageClient(tmp_path / "files", "secret")
    layer = _layer(chat_db)
    layer.storage_provider = store
    thread_id, step_id = str(uuid.uuid4()), str(uuid.uuid4())
    (sms_name,) = EPHEMERAL_ELEMENTS

    async def scenario() -> dict:
        from chainlit.context import init_http_context

        init_http_context()
        user = await layer.create_user(User(identifier="asha", metadata={"role": "customer"}))
        await layer.update_thread(thread_id, name="neft", user_id=user.id)
        await layer.create_step({"id": step_id, "threadId": thread_id, "name": "Sahayak", "type": "assistant_message",
                                 "output": "NEFT runs 24x7.", "streaming": False, "createdAt": "2026-01-01T00:00:00Z"})
        cite = Text(name="neft-rtgs", content=f"NEFT runs 24x7. Card {CARD}.", display="side", for_id=step_id)
        cite.thread_id = thread_id
        sms = Text(name=sms_name, content="Your OTP is 482913", display="inline", for_id=step_id)
        sms.thread_id = thread_id
        await layer.create_element(cite)
        await layer.create_element(sms)
        thread = await layer.get_thread(thread_id)
        await layer.engine.dispose()
        return {"thread": thread, "user_id": user.id}

    with ThreadPoolExecutor(1) as pool:
        out = pool.submit(asyncio.run, scenario()).result()
    elements = out["thread"]["elements"]
    assert [e["name"] for e in elements] == ["neft-rtgs"]
    key = elements[0]["objectKey"]
    assert key.startswith(out["user_id"] + "/")
    assert elements[0]["url"].startswith("/chat-files/") and "sig=" in elements[0]["url"]
    body, mime = store.read(key)
    assert body.decode().startswith("NEFT runs 24x7. Card XXXX") and CARD not in body.decode()
    on_disk = b"".join(p.read_bytes() for p in (tmp_path / "files").iterdir())
    assert b"482913" not in on_disk and CARD.encode() not in on_disk


def test_file_urls_are_signed_expire_and_stay_in_their_folder(tmp_path) -> None:
    from urllib.parse import parse_qs, unquote, urlsplit

    from app.web.files import LocalStorageClient

    store = LocalStorageClient(tmp_path / "files", "secret", ttl_s=60)
    key = "user-1/elem-1/../../etc/passwd"
    _run(store.upload_file(key, "passage", mime="text/plain"))
    assert [p.parent for p in (tmp_path / "files").iterdir()] == [tmp_path / "files"] * 2
    url = store.signed_url(key, now=1_000)
    parts = urlsplit(url)
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    path_key = unquote(parts.path.removeprefix("/chat-files/"))
    assert path_key == key
    assert store.check(key, q["expires"], q["sig"], now=1_030)
    assert not store.check(key, q["expires"], q["sig"], now=1_061)  # expired
    assert not store.check("user-2/elem-1/x", q["expires"], q["sig"], now=1_030)  # another object
    assert not store.check(key, str(int(q["expires"]) + 600), q["sig"], now=1_030)  # extended expiry
    assert not store.check(key, q["expires"], None, now=1_030)
    assert not LocalStorageClient(tmp_path / "other", "another-secret").check(key, q["expires"], q["sig"], now=1_030)
    assert store.read(key) == (b"passage", "text/plain")
    assert _run(store.delete_file(key)) and store.read(key) is None
