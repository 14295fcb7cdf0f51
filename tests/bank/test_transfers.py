"""Transfers: double entry, idempotency, limits, amounts, and concurrency on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
import sqlalchemy as sa

from app.bank.db import session_scope
from app.bank.errors import BankError, IdempotencyConflict, InsufficientFunds, InvalidAmount, LimitExceeded
from app.bank.models import Account, LedgerEntry, Transfer
from app.bank.seed import CLEARING_ACCOUNT_NUMBER
from app.bank.service import BankService
from app.core.settings import Settings


def _ledger_for(url: str, reference: str) -> list[tuple[str, Decimal]]:
    with session_scope(url) as s:
        rows = s.execute(
            sa.select(Account.number, LedgerEntry.amount)
            .join(LedgerEntry, LedgerEntry.account_id == Account.id)
            .join(Transfer, Transfer.id == LedgerEntry.transfer_id)
            .where(Transfer.reference == reference)
        ).all()
    return [(n, a) for n, a in rows]


def _new(view_list: list) -> list:
    """Transfers made by the test (the seed adds a short history, keys ``seed-…``)."""
    return [t for t in view_list if not t.idempotency_key.startswith("seed-")]


def _count(s, model) -> int:
    """Rows of ``Transfer`` or ``LedgerEntry`` made by the test, not by the seed's history."""
    stmt = sa.select(sa.func.count()).select_from(model)
    if model is LedgerEntry:
        stmt = stmt.join(Transfer, Transfer.id == LedgerEntry.transfer_id)
    return s.scalar(stmt.where(Transfer.idempotency_key.not_like("seed-%")))


def _balance(url: str, number: str) -> Decimal:
    with session_scope(url) as s:
        return s.scalars(sa.select(Account.balance).where(Account.number == number)).one()


def _total_money(url: str) -> Decimal:
    with session_scope(url) as s:
        return s.scalar(sa.select(sa.func.sum(Account.balance)))


def test_transfer_to_internal_payee(bank: BankService, asha, seeded_url: str) -> None:
    total = _total_money(seeded_url)
    payee = bank.resolve_beneficiary(asha.id, "ravi")
    t = bank.transfer(asha.id, "savings", payee.id, Decimal("2500"), "happy-1", session_id="s-1")
    assert t.status == "completed" and not t.replayed
    assert t.amount == Decimal("2500.00") and t.reference.startswith("TXN")
    assert t.from_account == "XXXXXXXX7781" and t.beneficiary == "Ravi Kumar"
    assert t.balance_after == Decimal("122500.00")
    assert sorted(_ledger_for(seeded_url, t.reference)) == [
        ("501000427781", Decimal("-2500.00")), ("501000583362", Decimal("2500.00"))
    ]
    assert _balance(seeded_url, "501000427781") == Decimal("122500.00")
    assert _balance(seeded_url, "501000583362") == Decimal("51000.00")
    assert _total_money(seeded_url) == total  # money moved, none created
    assert bank.daily_total(asha.id) == Decimal("2500.00")
    assert [x.reference for x in _new(bank.recent_transfers(asha.id))] == [t.reference]


def test_transfer_to_external_payee_credits_clearing(bank: BankService, asha, seeded_url: str) -> None:
    payee = bank.resolve_beneficiary(asha.id, "Priya Sharma")
    t = bank.transfer(asha.id, "current", payee.id, "1234.50", "ext-1")
    assert sorted(_ledger_for(seeded_url, t.reference)) == [
        ("502000429034", Decimal("-1234.50")), (CLEARING_ACCOUNT_NUMBER, Decimal("1234.50"))
    ]
    assert bank.resolve_account(asha.id, "current").balance == Decimal("338765.50")


def test_replay_returns_the_same_transfer(bank: BankService, asha, seeded_url: str) -> None:
    payee = bank.resolve_beneficiary(asha.id, "ravi")
    first = bank.transfer(asha.id, "savings", payee.id, Decimal("700"), "replay-1")
    again = bank.transfer(asha.id, "7781", payee.id, 700, "replay-1")
    assert again.replayed and again.reference == first.reference and again.id == first.id
    assert again.balance_after == first.balance_after == Decimal("124300.00")
    assert len(_ledger_for(seeded_url, first.reference)) == 2
    assert bank.resolve_account(asha.id).balance == Decimal("124300.00")
    with pytest.raises(IdempotencyConflict):
        bank.transfer(asha.id, "savings", payee.id, Decimal("701"), "replay-1")
    with pytest.raises(IdempotencyConflict):
        bank.transfer(asha.id, "current", payee.id, Decimal("700"), "replay-1")
    ravi = bank.get_customer("ravi")
    back = bank.resolve_beneficiary(ravi.id, "asha")
    with pytest.raises(IdempotencyConflict):  # another customer can never pick up asha's transfer by its key
        bank.transfer(ravi.id, "savings", back.id, Decimal("700"), "replay-1")


def test_insufficient_funds(bank: BankService, ravi, seeded_url: str) -> None:
    payee = bank.resolve_beneficiary(ravi.id, "landlord")
    with pytest.raises(InsufficientFunds, match="isn't enough") as err:
        bank.transfer(ravi.id, "savings", payee.id, Decimal("48500.01"), "nsf-1")
    assert "₹48,500.00" in str(err.value)
    assert bank.resolve_account(ravi.id).balance == Decimal("48500.00")
    with session_scope(seeded_url) as s:
        failed = s.scalars(sa.select(Transfer).where(Transfer.idempotency_key == "nsf-1")).one()
        assert failed.status == "failed" and failed.failure_code == "insufficient_funds"
        assert _count(s, LedgerEntry) == 0
    with pytest.raises(InsufficientFunds):  # a retry of a failed request fails the same way
        bank.transfer(ravi.id, "savings", payee.id, Decimal("48500.01"), "nsf-1")
    exact = bank.transfer(ravi.id, "savings", payee.id, Decimal("48500.00"), "nsf-2")
    assert exact.balance_after == Decimal("0.00")


def test_per_transfer_limit(bank: BankService, asha) -> None:
    payee = bank.resolve_beneficiary(asha.id, "mom")
    with pytest.raises(LimitExceeded, match="per transfer"):
        bank.transfer(asha.id, "current", payee.id, Decimal("200000.01"), "lim-1")
    ok = bank.transfer(asha.id, "current", payee.id, Decimal("200000.00"), "lim-2")
    assert ok.status == "completed"


def test_daily_limit_and_ist_day_rollover(seeded_url: str, clock) -> None:
    settings = Settings(daily_transfer_limit=Decimal("60000"), per_transfer_limit=Decimal("50000"))
    bank = BankService(seeded_url, settings=settings, clock=clock)
    asha = bank.get_customer("asha")
    payee = bank.resolve_beneficiary(asha.id, "mom")
    bank.transfer(asha.id, "savings", payee.id, Decimal("50000"), "day-1")
    with pytest.raises(LimitExceeded, match="₹10,000.00 more today"):
        bank.transfer(asha.id, "current", payee.id, Decimal("10000.01"), "day-2")  # the limit spans accounts
    bank.transfer(asha.id, "current", payee.id, Decimal("10000"), "day-3")
    assert bank.daily_remaining(asha.id) == Decimal("0.00")
    # 23:59 IST is still the same day; 00:00 IST the next
    clock.now = clock.now.replace(hour=18, minute=29)  # 23:59 IST
    with pytest.raises(LimitExceeded):
        bank.transfer(asha.id, "savings", payee.id, Decimal("1"), "day-4")
    clock.advance(minutes=1)  # 00:00 IST
    assert bank.daily_total(asha.id) == Decimal("0.00")
    assert bank.transfer(asha.id, "savings", payee.id, Decimal("1"), "day-5").status == "completed"


BAD_AMOUNTS = [0, "0.00", -5, Decimal("-0.01"), "abc", "", None, True, "NaN", "Infinity", Decimal("1e15"), "10.005", 0.001]


def test_invalid_amounts(bank: BankService, asha) -> None:
    payee = bank.resolve_beneficiary(asha.id, "ravi")
    for i, amount in enumerate(BAD_AMOUNTS):
        with pytest.raises(InvalidAmount):
            bank.transfer(asha.id, "savings", payee.id, amount, f"bad-{i}")
    assert bank.resolve_account(asha.id).balance == Decimal("125000.00")
    assert _new(bank.recent_transfers(asha.id)) == []  # nothing was recorded for a malformed request


def test_amount_forms_and_currency(bank: BankService, asha) -> None:
    payee = bank.resolve_beneficiary(asha.id, "ravi")
    assert bank.transfer(asha.id, None, payee.id, 2500.5, "form-1").amount == Decimal("2500.50")
    assert bank.transfer(asha.id, None, payee.id, "₹1,00,000", "form-2").amount == Decimal("100000.00")
    with pytest.raises(InvalidAmount, match="INR"):
        bank.transfer(asha.id, None, payee.id, Decimal("10"), "form-3", currency="USD")
    with pytest.raises(LimitExceeded):  # huge but representable: the limit speaks, not a crash
        bank.transfer(asha.id, None, payee.id, Decimal("99999999999"), "form-4")
    with pytest.raises(BankError):
        bank.transfer(asha.id, None, payee.id, Decimal("10"), "  ")


def test_fifty_concurrent_retries_move_money_once(bank: BankService, asha, seeded_url: str) -> None:
    payee = bank.resolve_beneficiary(asha.id, "ravi")
    n = 50
    barrier = threading.Barrier(n)

    def retry() -> tuple[str, bool]:
        barrier.wait()
        t = bank.transfer(asha.id, "savings", payee.id, Decimal("1500"), "same-key-50", session_id="s-conc")
        return t.reference, t.replayed

    with ThreadPoolExecutor(max_workers=n) as pool:
        results = list(pool.map(lambda _: retry(), range(n)))
    references = {r for r, _ in results}
    assert len(references) == 1
    assert sum(1 for _, replayed in results if not replayed) == 1
    (reference,) = references
    entries = _ledger_for(seeded_url, reference)
    assert len(entries) == 2
    assert sorted(a for _, a in entries) == [Decimal("-1500.00"), Decimal("1500.00")]
    with session_scope(seeded_url) as s:
        assert _count(s, Transfer) == 1
        assert _count(s, LedgerEntry) == 2
    assert _balance(seeded_url, "501000427781") == Decimal("123500.00")
    assert _balance(seeded_url, "501000583362") == Decimal("50000.00")


def test_daily_limit_holds_under_concurrency(seeded_url: str, clock) -> None:
    limit = Decimal("100000")
    settings = Settings(daily_transfer_limit=limit)
    bank = BankService(seeded_url, settings=settings, clock=clock)
    asha = bank.get_customer("asha")
    payee = bank.resolve_beneficiary(asha.id, "Priya Sharma")
    n = 24
    barrier = threading.Barrier(n)

    def send(i: int) -> str:
        barrier.wait()
        try:  # both accounts at once: the limit is per customer, not per account
            bank.transfer(asha.id, "savings" if i % 2 else "current", payee.id, Decimal("15000"), f"daily-{i}")
            return "ok"
        except LimitExceeded:
            return "limit"

    with ThreadPoolExecutor(max_workers=n) as pool:
        outcomes = list(pool.map(send, range(n)))
    assert outcomes.count("ok") == 6 and outcomes.count("limit") == n - 6  # 6 × 15,000 ≤ 100,000 < 7 × 15,000
    assert bank.daily_total(asha.id) == Decimal("90000.00") <= limit
    savings, current = (a.balance for a in bank.accounts(asha.id))
    assert savings + current == Decimal("465000.00") - Decimal("90000.00")


def test_opposite_concurrent_transfers_do_not_deadlock(bank: BankService, asha, ravi, seeded_url: str) -> None:
    total = _total_money(seeded_url)
    to_ravi = bank.resolve_beneficiary(asha.id, "ravi")
    to_asha = bank.resolve_beneficiary(ravi.id, "asha")
    n = 20
    barrier = threading.Barrier(n)

    def send(i: int) -> None:
        barrier.wait()
        if i % 2:
            bank.transfer(asha.id, "savings", to_ravi.id, Decimal("100"), f"x-a-{i}")
        else:
            bank.transfer(ravi.id, "savings", to_asha.id, Decimal("40"), f"x-r-{i}")

    with ThreadPoolExecutor(max_workers=n) as pool:
        list(pool.map(send, range(n)))
    assert _balance(seeded_url, "501000427781") == Decimal("125000.00") - 10 * 100 + 10 * 40
    assert _balance(seeded_url, "501000583362") == Decimal("48500.00") + 10 * 100 - 10 * 40
    assert _total_money(seeded_url) == total
    with session_scope(seeded_url) as s:
        assert _count(s, LedgerEntry) == 2 * n
