"""The bank side of the service requests (issue 18): own-account transfers and card-bill payments on the
transfer machinery, card deliveries, statements behind signed links, and requests/cases with SLAs —
on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import stat
from datetime import timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest

from app.bank.errors import BankError, IdempotencyConflict, InvalidAmount, NotFound
from app.bank.facts import load_facts
from app.bank.service import BankService

RULES = load_facts()["service_requests"]


def _sms(bank: BankService) -> str:
    path = bank.settings.outbox_dir / "sms.log"
    return path.read_text(encoding="utf-8") if path.exists() else ""


# ---------------------------------------------------------------------- own-account transfers
def test_own_transfer_moves_once_and_skips_the_payee_limit(bank: BankService, asha) -> None:
    spent = bank.daily_total(asha.id)
    t = bank.own_transfer(asha.id, "current", "savings", "10000", "own-1")
    assert t.status == "completed" and t.own and t.beneficiary == "your savings account"
    assert bank.resolve_account(asha.id, "current").balance == Decimal("330000.00")
    assert bank.resolve_account(asha.id, "savings").balance == Decimal("135000.00")
    assert [e["amount"] for e in bank.ledger(t.reference)] == [Decimal("-10000.00"), Decimal("10000.00")]
    again = bank.own_transfer(asha.id, "current", "savings", "10000", "own-1")
    assert again.replayed and again.reference == t.reference
    assert bank.resolve_account(asha.id, "savings").balance == Decimal("135000.00")  # not twice
    assert bank.daily_total(asha.id) == spent  # the money stayed the customer's
    with pytest.raises(IdempotencyConflict):
        bank.own_transfer(asha.id, "current", "savings", "20000", "own-1")


def test_own_transfer_refusals(bank: BankService, asha, ravi) -> None:
    with pytest.raises(BankError, match="same account"):
        bank.own_transfer(asha.id, "savings", "savings", "100", "own-same")
    with pytest.raises(NotFound):  # ravi's account number is not one of asha's
        bank.own_transfer(asha.id, "savings", "502000584410", "100", "own-other")
    with pytest.raises(BankError, match="isn't enough"):
        bank.own_transfer(ravi.id, "savings", "current", "48500.01", "own-nsf")
    with pytest.raises(BankError, match="limit"):
        bank.own_transfer(asha.id, "current", "savings", "200000.01", "own-limit")


# ---------------------------------------------------------------------- credit-card bills
def test_card_bill_amounts_and_exactly_once_payment(bank: BankService, asha) -> None:
    bill = bank.card_bill(asha.id)
    assert (bill.card_last4, bill.total_due, bill.minimum_due) == ("8765", Decimal("18450.00"), Decimal("922.50"))
    assert bank.card_bill_amount(bill, "full") == Decimal("18450.00")
    assert bank.card_bill_amount(bill, "minimum") == Decimal("922.50")
    with pytest.raises(InvalidAmount, match="more than"):
        bank.card_bill_amount(bill, "amount", "20000")
    paid = bank.pay_card_bill(asha.id, "8765", "minimum", "922.50", "savings", "bill-1")
    assert paid.transfer.status == "completed" and paid.bill.paid == Decimal("922.50")
    assert paid.bill.minimum_outstanding == 0 and paid.bill.outstanding == Decimal("17527.50")
    replay = bank.pay_card_bill(asha.id, "8765", "minimum", "922.50", "savings", "bill-1")
    assert replay.transfer.replayed and replay.bill.paid == Decimal("922.50")  # paid once
    assert bank.resolve_account(asha.id).balance == Decimal("124077.50")
    with pytest.raises(BankError, match="already paid"):
        bank.card_bill_amount(bank.card_bill(asha.id), "minimum")
    with pytest.raises(InvalidAmount):  # the bank re-checks under the bill's lock
        bank.pay_card_bill(asha.id, "8765", "amount", "17527.51", "savings", "bill-2")
    bank.pay_card_bill(asha.id, "8765", "full", "17527.50", "current", "bill-3")
    with pytest.raises(BankError, match="Nothing is due"):
        bank.card_bill_amount(bank.card_bill(asha.id), "full")


def test_card_bill_is_only_for_own_credit_cards(bank: BankService, asha) -> None:
    with pytest.raises(NotFound, match="debit card"):
        bank.card_bill(asha.id, "4321")
    with pytest.raises(NotFound):
        bank.card_bill(asha.id, "3344")  # ravi's card


# ---------------------------------------------------------------------- card deliveries
def test_card_deliveries_show_the_card_on_its_way_first(bank: BankService, asha, ravi) -> None:
    first, *rest = bank.card_deliveries(asha.id)
    assert (first.card_last4, first.status, first.courier, first.tracking_ref) == ("8765", "dispatched", "Blue Dart",
                                                                                  "BD7041255390")
    assert first.dispatched_at is not None and first.expected_by is not None
    assert [d.status for d in rest] == ["delivered"]
    assert [d.status for d in bank.card_deliveries(ravi.id, "debit")] == ["processing"]
    with pytest.raises(NotFound):
        bank.card_deliveries(asha.id, "1122")  # not asha's card


# ---------------------------------------------------------------------- statements
def test_statement_file_link_owner_and_expiry(bank: BankService, asha, ravi, clock) -> None:
    bank.own_transfer(asha.id, "current", "savings", "5000", "st-1")
    day = clock.now.date().isoformat()
    st = bank.create_statement(asha.id, "savings", day, day)
    assert st.rows == 1 and st.filename.endswith(".csv")
    path = bank.settings.home / "statements" / f"{st.token}.csv"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    body, name = bank.open_statement(st.token, asha.id)
    rows = list(csv.reader(io.StringIO(body.decode())))
    summary = {r[0]: r[1] for r in rows if len(r) == 2}
    assert summary["Customer"] == "Asha Menon" and summary["Account"] == "Savings XXXXXXXX7781"
    # (the seed's history is dated by the real clock, after this test's clock: it counts as "later")
    assert Decimal(summary["Opening balance"]) + Decimal("5000.00") == Decimal(summary["Closing balance"])
    assert [r[3:5] for r in rows if len(r) == 6][1:] == [["", "5000.00"]]  # after the header row
    with pytest.raises(NotFound):
        bank.open_statement(st.token, ravi.id)  # another customer's statement reads as missing

    url = urlsplit(bank.statement_link(st))
    q = {k: v[0] for k, v in parse_qs(url.query).items()}
    token = url.path.rsplit("/", 1)[1]
    assert token == st.token and bank.check_statement_link(token, q["expires"], q["sig"])
    assert not bank.check_statement_link(token, q["expires"], "0" * 64)  # forged
    assert not bank.check_statement_link(token, str(int(q["expires"]) + 60), q["sig"])  # altered expiry
    clock.advance(minutes=RULES["statement_link_validity_minutes"] + 1)
    assert not bank.check_statement_link(token, q["expires"], q["sig"])  # expired
    with pytest.raises(NotFound):
        bank.open_statement(st.token, asha.id)


def test_statement_periods_are_checked(bank: BankService, asha) -> None:
    with pytest.raises(BankError, match="after its end"):
        bank.create_statement(asha.id, "savings", "2026-03-02", "2026-03-01")
    with pytest.raises(BankError, match="at most"):
        bank.create_statement(asha.id, "savings", "2024-01-01", "2026-03-01")
    with pytest.raises(NotFound):
        bank.create_statement(asha.id, "502000584410", "2026-03-01", "2026-03-01")  # ravi's current account


# ---------------------------------------------------------------------- service requests and cases
def test_cheque_book_reference_sla_and_no_duplicates(bank: BankService, asha, clock) -> None:
    req = bank.request_cheque_book(asha.id, "current", "chq-1")
    assert req.reference.startswith("CHQ") and req.kind == "cheque_book" and req.details["leaves"] == 25
    assert req.due_by - req.created_at == timedelta(days=RULES["cheque_book_delivery_days"])
    assert bank.request_cheque_book(asha.id, "current", "chq-1").replayed
    second = bank.request_cheque_book(asha.id, "current", "chq-2")
    assert second.existing and second.reference == req.reference  # still on its way: not doubled
    assert bank.request_cheque_book(asha.id, "savings", "chq-3").reference != req.reference
    assert len(bank.service_requests(asha.id, "cheque_book")) == 2


def test_dispute_and_recall_cases_carry_the_facts_sla(bank: BankService, asha) -> None:
    transfers = {t.beneficiary: t for t in bank.recent_transfers(asha.id, 50)}
    recall = bank.raise_dispute(asha.id, "dsp-1", transfer_reference=transfers["Priya Sharma"].reference, recall=True)
    assert recall.kind == "transfer_recall" and recall.reference.startswith("RCL")
    assert recall.due_by - recall.created_at == timedelta(days=RULES["wrong_transfer_recall_days"])
    assert recall.details["payee"] == "Priya Sharma"
    failed = bank.raise_dispute(asha.id, "dsp-2", transfer_reference=transfers["Vikram Nair"].reference)
    assert failed.kind == "dispute" and failed.due_by - failed.created_at == timedelta(
        days=RULES["failed_transfer_dispute_days"])
    card = bank.raise_dispute(asha.id, "dsp-3", description="card charged twice")
    assert card.due_by - card.created_at == timedelta(days=RULES["card_dispute_resolution_days"])
    with pytest.raises(NotFound):
        bank.raise_dispute(asha.id, "dsp-4", transfer_reference="TXN000000DEADBEEF")
    with pytest.raises(NotFound):  # a failed transfer never left the account: nothing to recall
        bank.raise_dispute(asha.id, "dsp-5", transfer_reference=transfers["Vikram Nair"].reference, recall=True)
    with pytest.raises(IdempotencyConflict):
        bank.request_cheque_book(asha.id, "savings", "dsp-1")


def test_account_closure_is_a_request_not_instant(bank: BankService, asha) -> None:
    req = bank.request_account_closure(asha.id, "current", "cls-1")
    assert req.kind == "account_closure" and req.status == "open" and req.reference.startswith("CLS")
    assert req.due_by - req.created_at == timedelta(days=RULES["account_closure_days"])
    assert bank.resolve_account(asha.id, "current").status == "active"  # the branch closes it, not the chat
    assert bank.request_account_closure(asha.id, "current", "cls-2").existing


def test_update_contact_validates_changes_and_notifies(bank: BankService, asha) -> None:
    for bad in ("asha@", "asha.example.in", "a b@example.in", "asha@example", "asha@@example.in"):
        with pytest.raises(BankError, match="e-mail"):
            bank.update_contact(asha.id, "email", bad, f"bad-{bad}")
    for bad in ("12345", "5820011234", "+1 9820011234", "98200112345"):
        with pytest.raises(BankError, match="mobile"):
            bank.update_contact(asha.id, "phone", bad, f"bad-{bad}")
    before = _sms(bank)
    req = bank.update_contact(asha.id, "email", "Asha.New@Example.IN", "cnt-1")
    assert req.status == "completed" and bank.get_customer("asha").email == "asha.new@example.in"
    assert "e-mail was changed" in _sms(bank).removeprefix(before)
    assert bank.update_contact(asha.id, "email", "asha.new@example.in", "cnt-1").replayed
    bank.update_contact(asha.id, "phone", "+91 98765 43210", "cnt-2")
    assert bank.get_customer("asha").phone_masked == "+91XXXXXX3210"
    assert "To +91XXXXXX1234: Sahayak Bank: your registered mobile number was changed" in _sms(bank).removeprefix(before)  # old number told
    with pytest.raises(BankError, match="already"):
        bank.update_contact(asha.id, "phone", "9876543210", "cnt-3")


def test_pin_reset_sends_one_secure_link_and_never_for_a_blocked_card(bank: BankService, asha) -> None:
    before = _sms(bank)  # the outbox is shared by the tests of this session
    req = bank.send_pin_reset_link(asha.id, "debit", "pin-1")
    assert req.kind == "pin_reset" and req.details["card"] == "4321"
    log = _sms(bank).removeprefix(before)
    assert log.count("https://sahayakbank.example/pin/set/") == 1 and "card ending 4321" in log
    assert bank.send_pin_reset_link(asha.id, "debit", "pin-1").replayed
    assert _sms(bank).removeprefix(before).count("/pin/set/") == 1  # a retried confirmation sends no second link
    bank.block_card(asha.id, "8765")
    with pytest.raises(BankError, match="blocked"):
        bank.send_pin_reset_link(asha.id, "8765", "pin-2")
