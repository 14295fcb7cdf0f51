"""OTP challenges and card blocking."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from app.bank.db import session_scope
from app.bank.errors import Ambiguous, NotFound, OtpLocked
from app.bank.models import OtpChallenge
from app.bank.service import BankService


def _code(sms_text: str) -> str:
    match = re.search(r"\b(\d{6})\b", sms_text)
    assert match, sms_text
    return match.group(1)


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def test_otp_success_and_sms_outbox(bank: BankService, asha) -> None:
    issued = bank.issue_otp(asha.id, "transfer", "key-1", description="a transfer of ₹25,000.00 to Ravi Kumar")
    assert "₹25,000.00 to Ravi Kumar" in issued.sms_text and "Never share" in issued.sms_text
    assert issued.masked_phone == "+91XXXXXX1234"
    outbox = (bank.settings.outbox_dir / "sms.log").read_text(encoding="utf-8")
    last = outbox.strip().splitlines()[-1]
    assert "To +91XXXXXX1234:" in last and _code(issued.sms_text) in last and "9820011234" not in last
    result = bank.verify_otp(asha.id, issued.challenge_id, _code(issued.sms_text), reference="key-1")
    assert result.ok and result.reason == "verified"


def test_otp_is_stored_hashed(bank: BankService, asha, seeded_url: str) -> None:
    issued = bank.issue_otp(asha.id, "Fund_Transfer", "key-h")
    assert issued.sms_text.startswith("Your Sahayak OTP for fund transfer is ")
    with session_scope(seeded_url) as s:
        stored = s.scalars(sa.select(OtpChallenge.code_hash).where(OtpChallenge.id == issued.challenge_id)).one()
    assert _code(issued.sms_text) not in stored


def test_wrong_code_then_right(bank: BankService, asha) -> None:
    issued = bank.issue_otp(asha.id, "transfer", "key-2")
    code = _code(issued.sms_text)
    first = bank.verify_otp(asha.id, issued.challenge_id, _wrong(code))
    assert not first.ok and first.attempts_left == 2 and first.reason == "wrong_code" and "2 attempts" in first.message
    assert not bank.verify_otp(asha.id, issued.challenge_id, "12ab56").ok  # garbage counts as a wrong attempt
    assert bank.verify_otp(asha.id, issued.challenge_id, f" {code[:3]} {code[3:]} ").ok


def test_otp_lockout(bank: BankService, asha, ravi, clock) -> None:
    issued = bank.issue_otp(asha.id, "transfer", "key-3")
    code = _code(issued.sms_text)
    results = [bank.verify_otp(asha.id, issued.challenge_id, _wrong(code)) for _ in range(3)]
    assert [r.attempts_left for r in results] == [2, 1, 0]
    assert results[-1].locked and "15 more minutes" in results[-1].message
    # even the right code fails now, and no new OTP can be issued during the lockout
    assert bank.verify_otp(asha.id, issued.challenge_id, code).locked
    with pytest.raises(OtpLocked):
        bank.issue_otp(asha.id, "transfer", "key-4")
    # the lockout is per customer: ravi is unaffected
    assert bank.issue_otp(ravi.id, "transfer", "key-r").challenge_id
    clock.advance(minutes=15, seconds=1)
    fresh = bank.issue_otp(asha.id, "transfer", "key-4")
    assert bank.verify_otp(asha.id, fresh.challenge_id, _code(fresh.sms_text)).ok
    assert not bank.verify_otp(asha.id, issued.challenge_id, code).ok  # the locked challenge stays dead


def test_otp_expiry(bank: BankService, asha, clock) -> None:
    issued = bank.issue_otp(asha.id, "transfer", "key-5")
    clock.advance(seconds=bank.settings.otp_ttl_seconds - 1)
    still = bank.issue_otp(asha.id, "card_block", "key-6")
    clock.advance(seconds=1)
    expired = bank.verify_otp(asha.id, issued.challenge_id, _code(issued.sms_text))
    assert not expired.ok and expired.expired and expired.reason == "expired"
    assert bank.verify_otp(asha.id, still.challenge_id, _code(still.sms_text)).ok


def test_otp_cannot_be_reused(bank: BankService, asha) -> None:
    issued = bank.issue_otp(asha.id, "transfer", "key-7")
    code = _code(issued.sms_text)
    assert bank.verify_otp(asha.id, issued.challenge_id, code).ok
    again = bank.verify_otp(asha.id, issued.challenge_id, code)
    assert not again.ok and again.reason == "already_used"


def test_otp_belongs_to_its_customer_and_reference(bank: BankService, asha, ravi) -> None:
    issued = bank.issue_otp(asha.id, "transfer", "key-8")
    code = _code(issued.sms_text)
    stolen = bank.verify_otp(ravi.id, issued.challenge_id, code)
    assert not stolen.ok and stolen.reason == "not_found"
    other = bank.verify_otp(asha.id, issued.challenge_id, code, reference="key-other")
    assert not other.ok and other.reason == "wrong_reference"
    assert not bank.verify_otp(asha.id, "no-such-challenge", code).ok
    # the failed cross-customer attempts did not burn asha's attempts
    assert bank.verify_otp(asha.id, issued.challenge_id, code, reference="key-8").ok


def test_new_otp_replaces_the_pending_one(bank: BankService, asha) -> None:
    old = bank.issue_otp(asha.id, "transfer", "key-9")
    new = bank.issue_otp(asha.id, "transfer", "key-9")
    assert not bank.verify_otp(asha.id, old.challenge_id, _code(old.sms_text)).ok
    assert bank.verify_otp(asha.id, new.challenge_id, _code(new.sms_text)).ok


def test_block_card(bank: BankService, asha, ravi) -> None:
    card = bank.block_card(asha.id, "debit")
    assert card.last4 == "4321" and card.status == "blocked" and not card.already_blocked
    assert card.blocked_at == bank.now()
    again = bank.block_card(asha.id, "card ending 4321")
    assert again.status == "blocked" and again.already_blocked
    statuses = {c.last4: c.status for c in bank.cards(asha.id)}
    assert statuses == {"4321": "blocked", "8765": "active"}
    assert all(c.status == "active" for c in bank.cards(ravi.id))
    assert bank.block_card(asha.id, "8765").type == "credit"
    assert not any(name.startswith("unblock") for name in dir(bank))  # unblocking is not reachable from chat


def test_card_references(bank: BankService, asha) -> None:
    assert bank.resolve_card(asha.id, "my credit card").last4 == "8765"
    assert bank.resolve_card(asha.id, "atm card").last4 == "4321"
    with pytest.raises(Ambiguous) as err:
        bank.resolve_card(asha.id, "my card")
    assert len(err.value.choices) == 2
    with pytest.raises(NotFound, match="no card ending 9999"):
        bank.block_card(asha.id, "9999")
    assert all(c.status == "active" for c in bank.cards(asha.id))
