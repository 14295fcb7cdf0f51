"""Bank errors. Every message is written to be shown to the customer as is."""

from __future__ import annotations

from app.core.errors import SahayakError


class BankError(SahayakError):
    """Base class of expected bank failures; ``code`` is a stable machine-readable tag."""

    code = "bank_error"

    def __init__(self, message: str = "", choices: list[str] | None = None):
        super().__init__(message)
        self.choices: list[str] = list(choices or [])


class NotFound(BankError):
    """The account, beneficiary, card, customer or record does not exist (for this customer)."""

    code = "not_found"


class Ambiguous(BankError):
    """A reference matches more than one thing; ``choices`` lists the candidates."""

    code = "ambiguous"


class InvalidAmount(BankError):
    """Zero, negative, non-numeric, more than two decimals, or the wrong currency."""

    code = "invalid_amount"


class InsufficientFunds(BankError):
    """The source account's balance does not cover the amount."""

    code = "insufficient_funds"


class LimitExceeded(BankError):
    """The per-transfer or the daily transfer limit would be exceeded."""

    code = "limit_exceeded"


class AccountUnavailable(BankError):
    """The account is frozen or closed."""

    code = "account_unavailable"


class IdempotencyConflict(BankError):
    """An idempotency key was reused for a different request."""

    code = "idempotency_conflict"


class OtpLocked(BankError):
    """Too many wrong OTPs: new OTPs are refused until the lockout ends."""

    code = "otp_locked"


ERRORS_BY_CODE: dict[str, type[BankError]] = {
    cls.code: cls
    for cls in (NotFound, InvalidAmount, InsufficientFunds, LimitExceeded, AccountUnavailable, IdempotencyConflict, OtpLocked)
}
