"""Branch search, products, applications, dialogue sessions, hand-off tickets and feedback."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from app.bank.errors import BankError, NotFound
from app.bank.service import BankService, haversine_km, ist_day_start


def test_haversine() -> None:
    assert haversine_km(18.9322, 72.8351, 18.9322, 72.8351) == 0
    # Mumbai Fort to Connaught Place, Delhi: about 1,150 km
    assert 1100 < haversine_km(18.9322, 72.8351, 28.6315, 77.2167) < 1200


def test_branches_by_pincode(bank: BankService) -> None:
    found = bank.branches_near("400050")
    assert found[0].pincode == "400050" and found[0].area == "Bandra" and found[0].distance_km == 0
    assert len(found) == 3 and all(b.city == "Mumbai" for b in found)
    assert [b.distance_km for b in found] == sorted(b.distance_km for b in found)
    assert bank.branches_near("near 400 001")[0].area == "Fort"
    two = bank.branches_near("411001", limit=5)
    assert {b.area for b in two[:2]} == {"Koregaon Park", "Camp"}  # both exact matches first
    assert all(b.city == "Pune" for b in two)


def test_branches_near_unknown_pincode(bank: BankService) -> None:
    # no branch has 400070 (Kurla); the nearest ones are still in Mumbai's eastern suburbs
    found = bank.branches_near("400070")
    assert found and all(b.city == "Mumbai" for b in found)
    delhi = bank.branches_near("110016")
    assert delhi and all(b.city in ("New Delhi", "Delhi") for b in delhi)
    with pytest.raises(NotFound, match="560001"):
        bank.branches_near("560001")  # Bengaluru: we have no branches there


def test_branches_by_area_and_city(bank: BankService) -> None:
    bandra = bank.branches_near("Bandra")
    assert bandra[0].area == "Bandra"
    andheri = bank.branches_near("ATM in Andheri")
    assert {b.area for b in andheri} == {"Andheri"}
    assert bank.branches_near("Andehri")[0].area == "Andheri"  # misspelt
    pune = bank.branches_near("Pune", limit=10)
    assert len(pune) >= 5 and all(b.city == "Pune" for b in pune)
    assert bank.branches_near("koregaon park")[0].area == "Koregaon Park"
    with pytest.raises(NotFound):
        bank.branches_near("Timbuktu")


def test_branch_kind_filter(bank: BankService) -> None:
    atms = bank.branches_near("400001", limit=10, kind="atm")
    assert atms and all(b.kind in ("atm", "both") for b in atms)
    assert "atm" in {b.kind for b in atms}
    branches = bank.branches_near("400001", limit=10, kind="branch")
    assert branches and all(b.kind in ("branch", "both") and b.ifsc for b in branches)


def test_ist_day_start() -> None:
    from datetime import datetime, timezone

    start = ist_day_start(datetime(2026, 3, 2, 20, 0, tzinfo=timezone.utc))  # 01:30 IST on 3 March
    assert start == datetime(2026, 3, 2, 18, 30, tzinfo=timezone.utc)
    assert start.astimezone(timezone.utc).date() == date(2026, 3, 2)


def test_open_account(bank: BankService, asha) -> None:
    app = bank.open_account(asha.id, "Savings account")
    assert app.reference.startswith("APP-") and app.account_type == "savings" and app.status == "submitted"
    assert bank.open_account(asha.id, "savings").reference == app.reference  # no duplicate application
    assert bank.open_account(asha.id, "current").reference != app.reference
    with pytest.raises(BankError):
        bank.open_account(asha.id, "crypto wallet")


def test_dialogue_session_roundtrip_and_expiry(bank: BankService, clock) -> None:
    assert bank.load_session("sess-1") is None
    state = {"intent": "transfer", "slots": {"amount": Decimal("2500.50"), "payee": "Ravi"}, "when": date(2026, 3, 2),
             "asked": {"amount"}}
    saved = bank.save_session("sess-1", "asha", "web", state, "<|im_start|>user\nhi<|im_end|>\n")
    loaded = bank.load_session("sess-1")
    assert loaded == saved
    assert loaded.state == {"intent": "transfer", "slots": {"amount": "2500.50", "payee": "Ravi"},
                            "when": "2026-03-02", "asked": ["amount"]}
    assert loaded.chatml.startswith("<|im_start|>user") and loaded.user_id == "asha" and loaded.channel == "web"
    clock.advance(minutes=20)
    bank.save_session("sess-1", "asha", "web", {"n": 2}, "x")  # a save extends the expiry
    clock.advance(minutes=20)
    again = bank.load_session("sess-1")
    assert again.state == {"n": 2} and again.created_at == saved.created_at
    clock.advance(minutes=bank.settings.session_ttl_minutes)
    assert bank.load_session("sess-1") is None
    assert bank.load_session("sess-1", include_expired=True).state == {"n": 2}
    assert bank.delete_session("sess-1") and not bank.delete_session("sess-1")
    with pytest.raises(TypeError):
        bank.save_session("sess-2", None, "cli", {"bad": object()}, "")


def test_handoff_tickets(bank: BankService) -> None:
    ref = bank.create_handoff("sess-9", "asha", "customer asked for a human", "<|im_start|>user\n[REDACTED]<|im_end|>")
    assert ref.startswith("HO-")
    open_ = bank.list_handoffs()
    assert [t.reference for t in open_] == [ref] and open_[0].status == "open"
    with pytest.raises(BankError, match="Only staff"):
        bank.claim_handoff(ref, "asha")
    claimed = bank.claim_handoff(ref, "meera")
    assert claimed.status == "claimed" and claimed.claimed_by == "meera"
    with pytest.raises(BankError, match="already claimed"):
        bank.claim_handoff(ref, "meera")
    assert bank.list_handoffs() == [] and len(bank.list_handoffs(status=None)) == 1
    assert bank.close_handoff(ref).status == "closed"
    with pytest.raises(NotFound):
        bank.close_handoff("HO-nope")


def test_feedback(bank: BankService) -> None:
    up = bank.add_feedback("sess-3", "turn-1", 1, user_id="asha", text="what is my balance", predicted_intent="check_balance")
    down = bank.add_feedback("sess-3", "turn-2", -1, text="block it", predicted_intent="greeting",
                             correct_intent="block_card", comment="wrong intent")
    assert up != down
    rows = bank.list_feedback()
    assert [(f.turn_id, f.rating, f.correct_intent) for f in rows] == [("turn-1", 1, None), ("turn-2", -1, "block_card")]
    assert [f.turn_id for f in bank.list_feedback(rating=-1)] == ["turn-2"]
    with pytest.raises(BankError):
        bank.add_feedback("sess-3", "turn-3", 0)
