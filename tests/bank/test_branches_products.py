"""Branch search, products and applications."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from app.bank.branches import haversine_km
from app.bank.clock import ist_day_start
from app.bank.errors import BankError, NotFound
from app.bank.service import BankService


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
