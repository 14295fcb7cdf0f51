"""Dialogue sessions, hand-off tickets and feedback: the conversation's stores on the bank's database."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from app.bank.db import Database
from app.bank.errors import BankError, NotFound
from app.conversation.sessions import SessionStore
from app.conversation.support import SupportStore


@pytest.fixture()
def db(seeded_url: str, clock) -> Database:
    return Database(seeded_url, clock=clock)


@pytest.fixture()
def sessions(db: Database) -> SessionStore:
    return SessionStore(db)


@pytest.fixture()
def support(db: Database) -> SupportStore:
    return SupportStore(db)


def test_dialogue_session_roundtrip_and_expiry(sessions: SessionStore, clock) -> None:
    assert sessions.load("sess-1") is None
    state = {"intent": "transfer", "slots": {"amount": Decimal("2500.50"), "payee": "Ravi"}, "when": date(2026, 3, 2),
             "asked": {"amount"}}
    saved = sessions.save("sess-1", "asha", "web", state, "<|im_start|>user\nhi<|im_end|>\n")
    loaded = sessions.load("sess-1")
    assert loaded == saved
    assert loaded.state == {"intent": "transfer", "slots": {"amount": "2500.50", "payee": "Ravi"},
                            "when": "2026-03-02", "asked": ["amount"]}
    assert loaded.chatml.startswith("<|im_start|>user") and loaded.user_id == "asha" and loaded.channel == "web"
    clock.advance(minutes=20)
    sessions.save("sess-1", "asha", "web", {"n": 2}, "x")  # a save extends the expiry
    clock.advance(minutes=20)
    again = sessions.load("sess-1")
    assert again.state == {"n": 2} and again.created_at == saved.created_at
    clock.advance(minutes=sessions.db.settings.session_ttl_minutes)
    assert sessions.load("sess-1") is None
    assert sessions.load("sess-1", include_expired=True).state == {"n": 2}
    assert sessions.delete("sess-1") and not sessions.delete("sess-1")
    with pytest.raises(TypeError):
        sessions.save("sess-2", None, "cli", {"bad": object()}, "")


def test_handoff_tickets(support: SupportStore) -> None:
    ref = support.create_handoff("sess-9", "asha", "customer asked for a human", "<|im_start|>user\n[REDACTED]<|im_end|>")
    assert ref.startswith("HO-")
    open_ = support.list_handoffs()
    assert [t.reference for t in open_] == [ref] and open_[0].status == "open"
    with pytest.raises(BankError, match="Only staff"):
        support.claim_handoff(ref, "asha")
    claimed = support.claim_handoff(ref, "meera")
    assert claimed.status == "claimed" and claimed.claimed_by == "meera"
    with pytest.raises(BankError, match="already claimed"):
        support.claim_handoff(ref, "meera")
    assert support.list_handoffs() == [] and len(support.list_handoffs(status=None)) == 1
    assert support.close_handoff(ref).status == "closed"
    with pytest.raises(NotFound):
        support.close_handoff("HO-nope")


def test_feedback(support: SupportStore) -> None:
    up = support.add_feedback("sess-3", "turn-1", 1, user_id="asha", text="what is my balance", predicted_intent="check_balance")
    down = support.add_feedback("sess-3", "turn-2", -1, text="block it", predicted_intent="greeting",
                                correct_intent="block_card", comment="wrong intent")
    assert up != down
    rows = support.list_feedback()
    assert [(f.turn_id, f.rating, f.correct_intent) for f in rows] == [("turn-1", 1, None), ("turn-2", -1, "block_card")]
    assert [f.turn_id for f in support.list_feedback(rating=-1)] == ["turn-2"]
    with pytest.raises(BankError):
        support.add_feedback("sess-3", "turn-3", 0)
