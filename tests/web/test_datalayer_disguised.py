"""Issue 19, finding 2, in the Chainlit history: card numbers written with dots, zero-width
characters or Devanagari digits are masked before the data layer writes them (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa

from tests.web.test_datalayer import _layer, chat_db  # noqa: F401 - chat_db is a fixture

DISGUISED = ["4556.7375.8689.9855", "\u200b".join("4556737586899855"), "४५५६ ७३७५ ८६८९ ९८५५",
             "4556\u2060-7375 / 8689\u00a09855"]


def test_disguised_card_numbers_never_reach_the_chat_history(chat_db: str) -> None:  # noqa: F811
    from chainlit.types import Feedback
    from chainlit.user import User

    layer = _layer(chat_db)
    thread_id = str(uuid.uuid4())
    raw = " | ".join(f"my card {c}" for c in DISGUISED)

    async def scenario() -> None:
        from chainlit.context import init_http_context

        init_http_context()
        user = await layer.create_user(User(identifier="asha", metadata={"role": "customer"}))
        await layer.update_thread(thread_id, name=raw, user_id=user.id, metadata={"note": raw}, tags=["web"])
        step_id = str(uuid.uuid4())
        await layer.create_step({"id": step_id, "threadId": thread_id, "name": "asha", "type": "user_message",
                                 "output": raw, "input": raw, "streaming": False, "metadata": {"echo": raw},
                                 "createdAt": "2026-01-01T00:00:00Z", "tags": ["x"]})
        await layer.upsert_feedback(Feedback(forId=step_id, value=1, threadId=thread_id, comment=raw))
        await layer.engine.dispose()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, scenario()).result()
    engine = sa.create_engine(chat_db)
    with engine.connect() as conn:
        dump = json.dumps([[list(map(str, row)) for row in conn.execute(sa.text(f"SELECT * FROM {t}"))]
                           for t in ("threads", "steps", "feedbacks")], ensure_ascii=False)
    engine.dispose()
    assert "XXXX XXXX XXXX 9855" in dump
    flat = dump.replace("\u200b", "").replace("\u2060", "")
    for needle in ["4556737586899855", "455673758689", "4556.7375", "४५५६", "4556 7375"]:
        assert needle not in flat, needle
