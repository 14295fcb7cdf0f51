"""The demo bank core: tables, database plumbing, seed data and the :class:`BankService` facade."""

from app.bank.errors import (
    AccountUnavailable,
    Ambiguous,
    BankError,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidAmount,
    LimitExceeded,
    NotFound,
    OtpLocked,
)
from app.bank.service import BankService

__all__ = [
    "AccountUnavailable", "Ambiguous", "BankError", "BankService", "IdempotencyConflict", "InsufficientFunds",
    "InvalidAmount", "LimitExceeded", "NotFound", "OtpLocked",
]
