"""The declarative base and the column types of every bank table.

Kept apart from :mod:`app.bank.db` (engines and transactions) so that the tables
(:mod:`app.bank.models`) and the plumbing import in one direction only: db → models → schema.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import Dialect, Integer, Numeric
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import DateTime, TypeDecorator


class Base(DeclarativeBase):
    """Declarative base of every bank table."""


class Money(TypeDecorator[Decimal]):
    """An INR amount with two decimals, always a :class:`~decimal.Decimal` in Python.

    PostgreSQL (and any other server) stores ``NUMERIC(14, 2)``. SQLite has no decimal
    type (its NUMERIC affinity would turn the value into a binary float), so there the
    amount is stored exactly as an integer number of paise.
    """

    impl = Numeric(14, 2)
    cache_ok = True
    _CENT = Decimal("0.01")

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Integer())
        return dialect.type_descriptor(Numeric(14, 2, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        amount = Decimal(value).quantize(self._CENT)
        if dialect.name == "sqlite":
            return int(amount * 100)
        return amount

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return (Decimal(int(value)) / 100).quantize(self._CENT)
        return Decimal(value).quantize(self._CENT)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python, whatever the backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; use datetime.now(timezone.utc)")
        value = value.astimezone(timezone.utc)
        # SQLite stores text without an offset: keep it UTC and naive there.
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
