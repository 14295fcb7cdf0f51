"""Chat history persistence for the Chainlit app: Chainlit's SQLAlchemy data layer, redacted.

Chainlit stores every message (``steps``), the thread (its name is the first user message),
elements and feedback. It persists the user's message *before* ``on_message`` runs, so the only
safe place to redact is the data layer itself: every text that reaches the database goes through
``privacy.redact`` here, whatever Chainlit code path wrote it. No full card number, CVV or
Aadhaar number is ever stored.

Chainlit does not create its tables; :func:`app.web.chatdb.create_schema` does (idempotent).

Element contents (the cited passages) go to :class:`app.web.files.LocalStorageClient`, so a
reopened thread still shows its sources. One-time codes are never stored: the demo-SMS element
(:data:`EPHEMERAL_ELEMENTS`) is shown live and skipped here.
"""

from __future__ import annotations

import asyncio
import json
import time
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from app.conversation.assistant import mask_codes
from app.conversation.frame import DialogueState
from app.core.settings import Settings, get_settings
from app.web.chatdb import chat_db_urls, create_schema
from app.web.files import storage_client
from app.web.runtime import get_assistant
from privacy.redact import redact, redact_obj

if TYPE_CHECKING:
    from chainlit.element import Element
    from chainlit.step import StepDict
    from chainlit.types import Feedback

# Elements shown live but never persisted: the demo SMS carries a one-time password.
EPHEMERAL_ELEMENTS = frozenset({"Demo SMS"})


def _redact_text(value: Any) -> Any:
    return redact(value) if isinstance(value, str) and value else value


# What the customer types at the OTP prompt is never stored (issue 19). Chainlit persists the user's
# message in a task of its own, which can run before or after the chat callback masks it, so the
# layer decides itself: a user message written while its session waits for an OTP, or one the chat
# callback has already flagged, is stored with its digits masked.
_FLAGGED: dict[str, float] = {}
_FLAG_SECONDS = 120.0


def flag_masked(text: str) -> None:
    """Mark ``text`` (a code typed at the OTP prompt) to be stored masked wherever it is written."""
    now = time.monotonic()
    for key in [k for k, t in _FLAGGED.items() if t < now]:
        _FLAGGED.pop(key, None)
    _FLAGGED[text] = now + _FLAG_SECONDS


def _at_otp_prompt(thread_id: str | None) -> bool:
    if not thread_id:
        return False
    try:
        session = get_assistant().sessions.load(thread_id)
    except Exception:  # noqa: BLE001 - an unknown state masks nothing more; redaction still runs
        return False
    return bool(session) and DialogueState.from_dict(session.state).context() == "otp"


async def _mask_codes(step: dict[str, Any]) -> None:
    if step.get("type") != "user_message":
        return
    texts = [step.get(k) for k in ("input", "output") if isinstance(step.get(k), str) and step.get(k)]
    if not texts:
        return
    if any(t in _FLAGGED for t in texts) or await asyncio.to_thread(_at_otp_prompt, step.get("threadId")):
        for key in ("input", "output"):
            if isinstance(step.get(key), str):
                step[key] = mask_codes(step[key])


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
    from chainlit.data.sql_alchemy import SQLAlchemyDataLayer  # heavy: Chainlit (~1.2 s; its import writes config files)

    class RedactingDataLayer(SQLAlchemyDataLayer):
        """``SQLAlchemyDataLayer`` that redacts PII from everything it writes."""

        async def create_step(self, step_dict: "StepDict") -> None:
            clean = dict(step_dict)
            await _mask_codes(clean)  # type: ignore[arg-type]
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
