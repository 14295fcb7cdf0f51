"""Schema creation, seeding and money storage on SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa

from app.bank.db import get_engine, init_db, session_scope
from app.bank.models import Account, Branch, Customer, LoanProduct
from app.bank.schema import Base
from app.bank.seed import CLEARING_ACCOUNT_NUMBER, load_facts, reset, seed
from app.bank.service import BankService


def _counts(url: str) -> dict[str, int]:
    with get_engine(url).connect() as conn:
        return {t: conn.execute(sa.text(f"SELECT COUNT(*) FROM {t}")).scalar_one() for t in Base.metadata.tables}


def test_schema_creation_is_idempotent(db_url: str) -> None:
    reset(db_url)
    init_db(db_url)
    init_db(db_url)
    Base.metadata.create_all(get_engine(db_url))  # a second real CREATE pass finds everything in place
    names = set(sa.inspect(get_engine(db_url)).get_table_names())
    assert set(Base.metadata.tables) <= names


def test_seed_is_idempotent(seeded_url: str) -> None:
    before = _counts(seeded_url)
    added = seed(seeded_url)
    assert added == {k: 0 for k in added}
    assert _counts(seeded_url) == before
    assert before["customers"] == 4  # asha, ravi, meera and the bank itself
    assert 40 <= before["branches"] <= 60


def test_seed_keeps_existing_state(seeded_url: str, clock) -> None:
    bank = BankService(seeded_url, clock=clock)
    asha = bank.get_customer("asha")
    payee = bank.resolve_beneficiary(asha.id, "Ravi")
    bank.transfer(asha.id, "savings", payee.id, Decimal("100"), "seed-keep-1")
    seed(seeded_url)
    assert bank.resolve_account(asha.id, "savings").balance == Decimal("124900.00")
    reset(seeded_url)
    asha = bank.get_customer("asha")  # ids may change when tables are recreated
    assert bank.resolve_account(asha.id, "savings").balance == Decimal("125000.00")


def test_demo_balances_and_cards(bank: BankService) -> None:
    asha, ravi = bank.get_customer("asha"), bank.get_customer("ravi")
    balances = {(a.type): a.balance for a in bank.accounts(asha.id)}
    assert balances == {"savings": Decimal("125000.00"), "current": Decimal("340000.00")}
    balances = {(a.type): a.balance for a in bank.accounts(ravi.id)}
    assert balances == {"savings": Decimal("48500.00"), "current": Decimal("75000.00")}
    assert {(c.type, c.last4) for c in bank.cards(asha.id)} == {("debit", "4321"), ("credit", "8765")}
    assert {(c.type, c.last4) for c in bank.cards(ravi.id)} == {("debit", "1122"), ("credit", "3344")}
    assert all(len(a.number) == 12 and a.masked == "X" * 8 + a.number[-4:] for a in bank.accounts(asha.id))
    meera = bank.get_customer("meera")
    assert meera is not None and meera.role == "staff"


def test_loan_products_come_from_bank_facts(bank: BankService) -> None:
    facts = load_facts()["loans"]
    products = {p.kind: p for p in bank.loan_products()}
    assert set(products) == set(facts)
    for kind, spec in facts.items():
        p = products[kind]
        assert p.rate_min == Decimal(str(spec["rate_pct_min"])) and p.rate_max == Decimal(str(spec["rate_pct_max"]))
        assert p.max_tenure_years == spec["max_tenure_years"]
        assert p.min_amount == Decimal(str(spec["min_amount_inr"])) and p.max_amount == Decimal(str(spec["max_amount_inr"]))
        assert p.processing_fee_pct == Decimal(str(spec["processing_fee_pct"]))
    assert bank.loan_product("HOME").name == products["home"].name


def test_money_is_exact(seeded_url: str) -> None:
    # 0.10 added thirty times is exactly 3.00 (it would not be with binary floats).
    with session_scope(seeded_url, write=True) as s:
        acct = s.scalars(sa.select(Account).where(Account.number == CLEARING_ACCOUNT_NUMBER)).one()
        acct.balance = Decimal("0.00")
    for _ in range(30):
        with session_scope(seeded_url, write=True) as s:
            acct = s.scalars(sa.select(Account).where(Account.number == CLEARING_ACCOUNT_NUMBER)).one()
            acct.balance = acct.balance + Decimal("0.10")
    with session_scope(seeded_url) as s:
        value = s.scalars(sa.select(Account.balance).where(Account.number == CLEARING_ACCOUNT_NUMBER)).one()
        total = s.scalar(sa.select(sa.func.sum(Account.balance)).where(Account.customer_id.is_not(None)))
    assert value == Decimal("3.00") and isinstance(value, Decimal)
    assert total == Decimal("588500.00")


def test_branch_data_is_plausible(seeded_url: str) -> None:
    with session_scope(seeded_url) as s:
        branches = s.scalars(sa.select(Branch)).all()
        codes = [b.code for b in branches]
        assert len(codes) == len(set(codes))
        for b in branches:
            assert len(b.pincode) == 6 and b.pincode.isdigit()
            assert 18.0 < b.latitude < 29.5 and 72.0 < b.longitude < 78.0
            assert (b.ifsc is None) == (b.kind == "atm")
            if b.ifsc:
                assert len(b.ifsc) == 11 and b.ifsc[4] == "0"
        cities = {b.city for b in branches}
        assert {"Mumbai", "Navi Mumbai", "Pune", "New Delhi"} <= cities
        assert s.scalar(sa.select(sa.func.count()).select_from(LoanProduct)) == 5
        assert s.scalars(sa.select(Customer.role).where(Customer.username == "sahayak-bank")).one() == "system"
