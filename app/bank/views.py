"""Plain read-only views returned by :class:`~app.bank.service.BankService`.

They are detached copies (pydantic models), never ORM objects, so callers cannot trigger
lazy loads on closed sessions or change rows by accident. ``model_dump(mode="json")`` gives
a JSON-safe dict for the UI and provenance.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


def format_inr(amount: Decimal) -> str:
    """₹ with Indian digit grouping: ``Decimal("125000")`` → ``₹1,25,000.00``."""
    sign = "-" if amount < 0 else ""
    whole, _, frac = f"{abs(amount):.2f}".partition(".")
    if len(whole) > 3:
        head, tail = whole[:-3], whole[-3:]
        groups = []
        while len(head) > 2:
            groups.insert(0, head[-2:])
            head = head[:-2]
        if head:
            groups.insert(0, head)
        whole = ",".join(groups + [tail])
    return f"{sign}₹{whole}.{frac}"


class CustomerView(_View):
    id: int
    username: str
    full_name: str
    role: str
    city: str
    phone_masked: str
    email: str

    @property
    def first_name(self) -> str:
        return self.full_name.split()[0] if self.full_name else self.username


class AccountView(_View):
    id: int
    number: str
    masked: str
    type: str
    currency: str
    balance: Decimal
    status: str
    branch: str | None = None
    ifsc: str | None = None

    @property
    def label(self) -> str:
        """``Savings XXXXXXXX7781``."""
        return f"{self.type.capitalize()} {self.masked}"

    @property
    def balance_text(self) -> str:
        return format_inr(self.balance)


class BeneficiaryView(_View):
    id: int
    name: str
    nickname: str | None
    masked_account: str
    ifsc: str
    bank_name: str
    internal: bool


class CardView(_View):
    id: int
    last4: str
    type: str
    network: str
    variant: str
    status: str
    blocked_at: datetime | None = None
    already_blocked: bool = False  # set by block_card when the card was blocked before this call

    @property
    def label(self) -> str:
        """``Visa debit card ending 4321``."""
        return f"{self.network} {self.type} card ending {self.last4}"


class TransferView(_View):
    id: int
    reference: str
    idempotency_key: str
    status: str
    amount: Decimal
    currency: str
    from_account: str  # masked
    beneficiary: str
    to_account: str  # masked
    created_at: datetime
    completed_at: datetime | None
    balance_after: Decimal | None = None  # source balance right after this transfer
    replayed: bool = False  # True when an earlier transfer with the same key was returned
    failure_code: str | None = None
    failure_reason: str | None = None

    @property
    def amount_text(self) -> str:
        return format_inr(self.amount)


class OtpIssued(_View):
    challenge_id: str
    expires_at: datetime
    sms_text: str
    masked_phone: str


class OtpResult(_View):
    ok: bool
    attempts_left: int
    locked: bool = False
    expired: bool = False
    reason: str = ""  # verified | wrong_code | locked | expired | already_used | not_found | wrong_reference
    message: str = ""  # one line for the customer


class BranchView(_View):
    code: str
    name: str
    kind: str
    address: str
    area: str
    city: str
    pincode: str
    latitude: float
    longitude: float
    phone: str
    hours: str
    ifsc: str | None
    distance_km: float | None = None


class LoanProductView(_View):
    kind: str
    name: str
    rate_min: Decimal
    rate_max: Decimal
    max_tenure_years: int
    min_amount: Decimal
    max_amount: Decimal
    processing_fee_pct: Decimal


class ApplicationView(_View):
    reference: str
    account_type: str
    status: str
    created_at: datetime


class DialogueSessionView(_View):
    session_id: str
    user_id: str | None
    channel: str
    state: dict[str, Any]
    chatml: str
    created_at: datetime
    updated_at: datetime
    expires_at: datetime


class HandoffView(_View):
    reference: str
    session_id: str
    user_id: str | None
    reason: str
    transcript: str
    status: str
    created_at: datetime
    claimed_by: str | None


class FeedbackView(_View):
    id: int
    session_id: str
    turn_id: str
    user_id: str | None
    text: str
    predicted_intent: str | None
    correct_intent: str | None
    rating: int
    comment: str | None
    created_at: datetime
