"""Plain read-only views returned by :class:`~app.bank.service.BankService`.

They are detached copies (pydantic models), never ORM objects, so callers cannot trigger
lazy loads on closed sessions or change rows by accident. ``model_dump(mode="json")`` gives
a JSON-safe dict for the UI and provenance.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from app.core.money import format_money


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


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
        return format_money(self.balance)


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
    own: bool = False  # between the customer's own accounts, or to their own credit card

    @property
    def amount_text(self) -> str:
        return format_money(self.amount)


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


class CardDeliveryView(_View):
    card_last4: str
    card_type: str
    card_label: str
    reason: str  # new | replacement | renewal
    status: str  # processing | dispatched | delivered | returned
    requested_at: datetime
    dispatched_at: datetime | None
    courier: str | None
    tracking_ref: str | None
    expected_by: datetime | None
    delivered_at: datetime | None


class CardBillView(_View):
    card_last4: str
    card_label: str
    statement_date: datetime
    due_date: datetime
    total_due: Decimal
    minimum_due: Decimal
    paid: Decimal

    @property
    def outstanding(self) -> Decimal:
        """What is still to pay on this statement."""
        return max(Decimal("0.00"), self.total_due - self.paid)

    @property
    def minimum_outstanding(self) -> Decimal:
        """What is still to pay to cover the minimum due."""
        return max(Decimal("0.00"), self.minimum_due - self.paid)


class CardPaymentView(_View):
    transfer: TransferView
    bill: CardBillView  # after the payment
    kind: str  # full | minimum | amount


class ServiceRequestView(_View):
    reference: str
    kind: str
    status: str
    created_at: datetime
    due_by: datetime | None
    details: dict[str, object]
    replayed: bool = False  # an earlier request with the same idempotency key was returned
    existing: bool = False  # an open request of the same kind already existed (no duplicate filed)


class StatementView(_View):
    token: str
    account_masked: str
    account_type: str
    period_from: str
    period_to: str
    filename: str
    rows: int
    created_at: datetime
    expires_at: datetime
