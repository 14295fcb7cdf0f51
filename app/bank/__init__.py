"""The demo bank core: models, database plumbing, seed data and :class:`BankService`."""

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

__all__ = [
    "AccountUnavailable", "Ambiguous", "BankError", "IdempotencyConflict", "InsufficientFunds", "InvalidAmount",
    "LimitExceeded", "NotFound", "OtpLocked", "BankService",
]


def __getattr__(name: str):  # lazy: importing app.bank stays cheap and free of import cycles
    if name == "BankService":
        from app.bank.service import BankService

        return BankService
    raise AttributeError(name)
