"""Authentication and per-customer scoping."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa

from app.bank.db import session_scope
from app.bank.errors import Ambiguous, NotFound
from app.bank.models import Beneficiary, Customer
from app.bank.security import hash_password, verify_password
from app.bank.service import BankService


def test_password_hashes_are_salted(bank: BankService, seeded_url: str) -> None:
    with session_scope(seeded_url) as s:
        hashes = dict(s.execute(sa.select(Customer.username, Customer.password_hash)).all())
    # asha and ravi share the demo password but not the hash
    assert hashes["asha"] != hashes["ravi"]
    assert hashes["asha"].startswith("scrypt$") and "demo1234" not in hashes["asha"]
    assert hash_password("same") != hash_password("same")
    assert verify_password("same", hash_password("same"))
    assert not verify_password("Same", hash_password("same"))
    assert not verify_password("x", "garbage")


def test_authenticate(bank: BankService) -> None:
    asha = bank.authenticate("asha", "demo1234")
    assert asha is not None and asha.full_name == "Asha Menon" and asha.city == "Mumbai"
    assert bank.authenticate(" ASHA ", "demo1234") == asha
    assert bank.authenticate("asha", "demo12345") is None
    assert bank.authenticate("asha", "") is None
    assert bank.authenticate("nobody", "demo1234") is None
    assert bank.authenticate("sahayak-bank", "!disabled") is None  # the bank's own record cannot log in
    meera = bank.authenticate("meera", "staff1234")
    assert meera is not None and meera.role == "staff"
    assert bank.authenticate("meera", "demo1234") is None


def test_customer_view_hides_contact_details(bank: BankService) -> None:
    asha = bank.get_customer("Asha")
    assert asha.phone_masked == "+91XXXXXX1234"
    assert not hasattr(asha, "password_hash")
    assert bank.get_customer_by_id(asha.id) == asha
    assert bank.get_customer("sahayak-bank") is None
    assert bank.get_customer("nobody") is None


def test_resolve_account_variants(bank: BankService, asha) -> None:
    savings = bank.resolve_account(asha.id, None)
    assert savings.type == "savings" and savings.number == "501000427781"
    assert bank.resolve_account(asha.id, "Savings account") == savings
    assert bank.resolve_account(asha.id, "7781") == savings
    assert bank.resolve_account(asha.id, "XXXXXXXX7781") == savings
    assert bank.resolve_account(asha.id, "501000427781") == savings
    assert bank.resolve_account(asha.id, "current").number == "502000429034"
    with pytest.raises(NotFound, match="no account ending 1111"):
        bank.resolve_account(asha.id, "1111")
    with pytest.raises(NotFound, match="Your accounts"):
        bank.resolve_account(asha.id, "my blue one")


def test_customers_cannot_reach_each_other(bank: BankService, asha, ravi) -> None:
    ravi_savings = bank.resolve_account(ravi.id, "savings")
    for ref in (ravi_savings.number, ravi_savings.number[-4:]):
        with pytest.raises(NotFound) as err:
            bank.resolve_account(asha.id, ref)
        assert ravi_savings.number not in str(err.value)  # the message never reveals the other account
    assert {a.id for a in bank.accounts(asha.id)}.isdisjoint({a.id for a in bank.accounts(ravi.id)})
    with pytest.raises(NotFound):
        bank.resolve_beneficiary(asha.id, "Landlord Deshpande")  # ravi's payee
    landlord = bank.resolve_beneficiary(ravi.id, "landlord")
    with pytest.raises(NotFound):
        bank.transfer(asha.id, "savings", landlord.id, Decimal("10"), "scope-1")
    with pytest.raises(NotFound):
        bank.block_card(asha.id, "1122")  # ravi's debit card
    assert bank.resolve_account(asha.id, "savings").balance == Decimal("125000.00")
    assert bank.cards(ravi.id)[0].status == "active"


def test_resolve_beneficiary(bank: BankService, asha, seeded_url: str) -> None:
    assert bank.resolve_beneficiary(asha.id, "Ravi Kumar").name == "Ravi Kumar"
    assert bank.resolve_beneficiary(asha.id, "RAVI").name == "Ravi Kumar"
    assert bank.resolve_beneficiary(asha.id, "mom").name == "Mom"
    assert bank.resolve_beneficiary(asha.id, "my mom").name == "Mom"
    assert bank.resolve_beneficiary(asha.id, "sharma").name == "Priya Sharma"
    assert bank.resolve_beneficiary(asha.id, "Pri").name == "Priya Sharma"
    assert bank.resolve_beneficiary(asha.id, "Vikrm").name == "Vikram Nair"  # misspelt
    ravi = bank.resolve_beneficiary(asha.id, "ravi")
    assert ravi.internal and ravi.masked_account.endswith("3362") and ravi.masked_account.startswith("XXXX")
    assert not bank.resolve_beneficiary(asha.id, "priya").internal
    with pytest.raises(NotFound) as err:
        bank.resolve_beneficiary(asha.id, "Zorawar")
    assert "Ravi Kumar" in str(err.value) and "Mom" in str(err.value)
    assert "Landlord Deshpande" not in str(err.value)
    with session_scope(seeded_url, write=True) as s:
        s.add(Beneficiary(customer_id=asha.id, name="Priya Nair", account_number="123456789012",
                          ifsc="KKBK0000001", bank_name="Kotak Mahindra Bank"))
    with pytest.raises(Ambiguous) as amb:
        bank.resolve_beneficiary(asha.id, "Priya")
    assert set(amb.value.choices) == {"Priya Sharma", "Priya Nair"}
    assert bank.resolve_beneficiary(asha.id, "priya nair").name == "Priya Nair"
