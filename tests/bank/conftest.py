"""Fixtures for the bank tests: a freshly seeded bank on SQLite and on PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest

from app.bank.db import dispose_engines
from app.bank.seed import reseed
from app.bank.service import BankService
from app.bank.views import CustomerView


@dataclass
class ManualClock:
    """A clock the test moves by hand (OTP expiry, lockouts, the IST day boundary)."""

    now: datetime = field(default_factory=lambda: datetime(2026, 3, 2, 6, 0, tzinfo=timezone.utc))  # 11:30 IST

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture()
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture()
def seeded_url(db_url: str) -> str:
    """``db_url`` with every bank table dropped and the demo bank seeded afresh."""
    reseed(db_url)
    yield db_url
    dispose_engines(db_url)


@pytest.fixture()
def bank(seeded_url: str, clock: ManualClock) -> BankService:
    return BankService(seeded_url, clock=clock)


@pytest.fixture()
def asha(bank: BankService) -> CustomerView:
    customer = bank.get_customer("asha")
    assert customer is not None
    return customer


@pytest.fixture()
def ravi(bank: BankService) -> CustomerView:
    customer = bank.get_customer("ravi")
    assert customer is not None
    return customer
