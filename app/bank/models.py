"""The bank's tables (SQLAlchemy 2 typed declarative models).

Money is :class:`~app.bank.schema.Money` (``NUMERIC(14, 2)``, exact paise on SQLite), time is
:class:`~app.bank.schema.UTCDateTime` (aware UTC). Full card numbers are never stored: a card
is its last four digits plus a keyed hash of the PAN when one is known.

The last three tables (dialogue sessions, hand-off tickets, feedback) belong to the
conversation's stores (:mod:`app.conversation.sessions`, :mod:`app.conversation.support`); they
are declared here so that one schema is created, cleared and reset together.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.bank.clock import utcnow
from app.bank.schema import Base, Money, UTCDateTime
from app.bank.text import mask_number

# The bank's own outward-clearing account: credits for payees at other banks land here, so
# every transfer is exactly one debit and one credit inside our ledger.
CLEARING_ACCOUNT_NUMBER = "999900000001"
# The bank's card-receivables account: credit-card bill payments from a customer's account land here.
CARD_PAYMENTS_ACCOUNT_NUMBER = "999900000002"


class Customer(Base):
    """A person who can log in: a customer, a staff member, or the bank itself (``system``)."""

    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(128))
    phone: Mapped[str] = mapped_column(String(20), default="")
    email: Mapped[str] = mapped_column(String(128), default="")
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16), default="customer")  # customer | staff | system
    city: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    accounts: Mapped[list[Account]] = relationship(back_populates="customer")
    cards: Mapped[list[Card]] = relationship(back_populates="customer")
    beneficiaries: Mapped[list[Beneficiary]] = relationship(back_populates="customer")

    __table_args__ = (CheckConstraint("role IN ('customer', 'staff', 'system')", name="ck_customer_role"),)


class Branch(Base):
    """A branch or ATM location."""

    __tablename__ = "branches"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(8), default="both")  # branch | atm | both
    address: Mapped[str] = mapped_column(String(256))
    area: Mapped[str] = mapped_column(String(64), index=True)
    city: Mapped[str] = mapped_column(String(64), index=True)
    pincode: Mapped[str] = mapped_column(String(6), index=True)
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    phone: Mapped[str] = mapped_column(String(20), default="")
    hours: Mapped[str] = mapped_column(String(128), default="")
    ifsc: Mapped[str | None] = mapped_column(String(11), nullable=True)

    __table_args__ = (CheckConstraint("kind IN ('branch', 'atm', 'both')", name="ck_branch_kind"),)


class Account(Base):
    """A deposit account. Bank-internal accounts (outward clearing) have no customer."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(12), unique=True)
    type: Mapped[str] = mapped_column(String(16))  # savings | current | clearing
    currency: Mapped[str] = mapped_column(String(3), default="INR")
    balance: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | frozen | closed
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True, nullable=True)
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branches.id"), nullable=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    customer: Mapped[Customer | None] = relationship(back_populates="accounts")
    branch: Mapped[Branch | None] = relationship()

    __table_args__ = (
        CheckConstraint("type IN ('savings', 'current', 'clearing')", name="ck_account_type"),
        CheckConstraint("length(number) = 12", name="ck_account_number_len"),
    )

    @property
    def masked(self) -> str:
        """The account number with all but the last four digits hidden."""
        return mask_number(self.number)


class Card(Base):
    """A debit or credit card. The full PAN is never stored."""

    __tablename__ = "cards"

    id: Mapped[int] = mapped_column(primary_key=True)
    last4: Mapped[str] = mapped_column(String(4))
    pan_hash: Mapped[str | None] = mapped_column(String(128), nullable=True)
    type: Mapped[str] = mapped_column(String(8))  # debit | credit
    network: Mapped[str] = mapped_column(String(16))
    variant: Mapped[str] = mapped_column(String(32), default="Classic")
    status: Mapped[str] = mapped_column(String(8), default="active")  # active | blocked
    blocked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    blocked_reason: Mapped[str | None] = mapped_column(String(128), nullable=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), nullable=True)

    customer: Mapped[Customer] = relationship(back_populates="cards")
    account: Mapped[Account | None] = relationship()

    __table_args__ = (
        UniqueConstraint("customer_id", "last4", name="uq_card_customer_last4"),
        CheckConstraint("type IN ('debit', 'credit')", name="ck_card_type"),
        CheckConstraint("status IN ('active', 'blocked')", name="ck_card_status"),
    )


class Beneficiary(Base):
    """A payee saved by a customer. ``account_id`` is set when the payee banks with us."""

    __tablename__ = "beneficiaries"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    nickname: Mapped[str | None] = mapped_column(String(64), nullable=True)
    account_number: Mapped[str] = mapped_column(String(20))
    ifsc: Mapped[str] = mapped_column(String(11))
    bank_name: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    customer: Mapped[Customer] = relationship(back_populates="beneficiaries")
    account: Mapped[Account | None] = relationship()

    __table_args__ = (UniqueConstraint("customer_id", "name", name="uq_beneficiary_customer_name"),)

    @property
    def masked(self) -> str:
        return mask_number(self.account_number)


class Transfer(Base):
    """One money movement; ``idempotency_key`` makes retries of the same request harmless.

    ``to_beneficiary_id`` names the saved payee; it is empty for a transfer between the customer's
    own accounts and for a credit-card bill payment (``to_account_id`` is then the target).
    """

    __tablename__ = "transfers"

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    from_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    to_beneficiary_id: Mapped[int | None] = mapped_column(ForeignKey("beneficiaries.id"), nullable=True)
    to_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), nullable=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3), default="INR")
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | completed | failed
    failure_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    failure_reason: Mapped[str | None] = mapped_column(String(256), nullable=True)
    channel: Mapped[str] = mapped_column(String(16), default="chat")
    session_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_by: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    from_account: Mapped[Account] = relationship(foreign_keys=[from_account_id])
    to_account: Mapped[Account | None] = relationship(foreign_keys=[to_account_id])
    beneficiary: Mapped[Beneficiary | None] = relationship()

    __table_args__ = (
        CheckConstraint("status IN ('pending', 'completed', 'failed')", name="ck_transfer_status"),
        CheckConstraint("amount > 0", name="ck_transfer_amount_positive"),
        Index("ix_transfers_customer_day", "created_by", "status", "created_at"),
    )


class CardDispatch(Base):
    """A card sent to the customer by courier (new, replacement or renewal)."""

    __tablename__ = "card_dispatches"

    id: Mapped[int] = mapped_column(primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id"), index=True)
    reason: Mapped[str] = mapped_column(String(16), default="new")  # new | replacement | renewal
    status: Mapped[str] = mapped_column(String(16), default="processing")  # processing|dispatched|delivered|returned
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    courier: Mapped[str | None] = mapped_column(String(32), nullable=True)
    tracking_ref: Mapped[str | None] = mapped_column(String(32), nullable=True)
    expected_by: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    card: Mapped[Card] = relationship()

    __table_args__ = (
        CheckConstraint("status IN ('processing', 'dispatched', 'delivered', 'returned')", name="ck_dispatch_status"),
        UniqueConstraint("card_id", "requested_at", name="uq_dispatch_card_requested"),
    )


class CardBill(Base):
    """A credit card's latest statement: what is due, the minimum, the due date and what was paid."""

    __tablename__ = "card_bills"

    id: Mapped[int] = mapped_column(primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id"), index=True)
    statement_date: Mapped[datetime] = mapped_column(UTCDateTime)
    due_date: Mapped[datetime] = mapped_column(UTCDateTime)
    total_due: Mapped[Decimal] = mapped_column(Money)
    minimum_due: Mapped[Decimal] = mapped_column(Money)
    paid: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))

    card: Mapped[Card] = relationship()

    __table_args__ = (UniqueConstraint("card_id", "statement_date", name="uq_bill_card_statement"),)


class CardPayment(Base):
    """Links a bill payment's transfer to the card bill it paid (one row per transfer)."""

    __tablename__ = "card_payments"

    id: Mapped[int] = mapped_column(primary_key=True)
    transfer_id: Mapped[int] = mapped_column(ForeignKey("transfers.id"), unique=True)
    bill_id: Mapped[int] = mapped_column(ForeignKey("card_bills.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # full | minimum | amount

    __table_args__ = (CheckConstraint("kind IN ('full', 'minimum', 'amount')", name="ck_card_payment_kind"),)


class ServiceRequest(Base):
    """A service request or case the bank carries out outside the chat (cheque book, dispute, closure…).

    ``idempotency_key`` makes a retried confirmation return the same request; ``due_by`` is the
    promised resolution date (the SLA from data/bank_facts.yaml); ``details`` is JSON.
    """

    __tablename__ = "service_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True, nullable=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | in_progress | completed | closed
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), nullable=True)
    transfer_id: Mapped[int | None] = mapped_column(ForeignKey("transfers.id"), nullable=True)
    details: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    due_by: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        CheckConstraint(
            "kind IN ('cheque_book', 'dispute', 'transfer_recall', 'account_closure', 'contact_update', 'pin_reset')",
            name="ck_request_kind"),
        CheckConstraint("status IN ('open', 'in_progress', 'completed', 'closed')", name="ck_request_status"),
    )


class Statement(Base):
    """A generated account statement file under ``$SAHAYAK_HOME/statements``, reachable by its owner until it expires."""

    __tablename__ = "statements"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)  # random; names the file and the link
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    period_from: Mapped[str] = mapped_column(String(10))  # ISO dates (IST calendar)
    period_to: Mapped[str] = mapped_column(String(10))
    filename: Mapped[str] = mapped_column(String(128))
    rows: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LedgerEntry(Base):
    """One side of a double entry: negative for a debit, positive for a credit."""

    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    transfer_id: Mapped[int] = mapped_column(ForeignKey("transfers.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    balance_after: Mapped[Decimal] = mapped_column(Money)
    description: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("transfer_id", "account_id", name="uq_ledger_transfer_account"),)


class OtpChallenge(Base):
    """A one-time password sent to a customer for one purpose and reference."""

    __tablename__ = "otp_challenges"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(64))
    reference: Mapped[str] = mapped_column(String(128))
    code_hash: Mapped[str] = mapped_column(String(160))  # "<salt hex>$<hmac-sha256 hex>"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|verified|failed|expired|locked

    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'verified', 'failed', 'expired', 'locked')", name="ck_otp_status"
        ),
    )


class LoanProduct(Base):
    """A loan product; the numbers come from data/bank_facts.yaml."""

    __tablename__ = "loan_products"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), unique=True)  # home | car | personal | education | gold
    name: Mapped[str] = mapped_column(String(64))
    rate_min: Mapped[Decimal] = mapped_column(Money)  # % per year
    rate_max: Mapped[Decimal] = mapped_column(Money)
    max_tenure_years: Mapped[int] = mapped_column(Integer)
    min_amount: Mapped[Decimal] = mapped_column(Money)
    max_amount: Mapped[Decimal] = mapped_column(Money)
    processing_fee_pct: Mapped[Decimal] = mapped_column(Money)


class AccountApplication(Base):
    """A request to open a new account (processed by staff, outside the chat)."""

    __tablename__ = "account_applications"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    account_type: Mapped[str] = mapped_column(String(16))
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="submitted")  # submitted | approved | rejected
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DialogueSession(Base):
    """The dialogue manager's persisted state for one conversation."""

    __tablename__ = "dialogue_sessions"

    session_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    channel: Mapped[str] = mapped_column(String(16), default="cli")
    state: Mapped[str] = mapped_column(Text, default="{}")  # JSON
    chatml: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class HandoffTicket(Base):
    """A conversation handed to a human agent (transcript already redacted by the caller)."""

    __tablename__ = "handoff_tickets"

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    session_id: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reason: Mapped[str] = mapped_column(String(256))
    transcript: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)  # open | claimed | closed
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (CheckConstraint("status IN ('open', 'claimed', 'closed')", name="ck_handoff_status"),)


class Feedback(Base):
    """A thumbs up/down (and optional correction) on one assistant turn."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[str] = mapped_column(String(64), index=True)
    turn_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    text: Mapped[str] = mapped_column(Text, default="")  # redacted by the caller
    predicted_intent: Mapped[str | None] = mapped_column(String(64), nullable=True)
    correct_intent: Mapped[str | None] = mapped_column(String(64), nullable=True)
    rating: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (CheckConstraint("rating IN (-1, 1)", name="ck_feedback_rating"),)


class WebLogin(Base):
    """One sign-in to the web chat: its id is carried in the login token and checked on every
    request and socket connect, so a logout (``revoked_at``) ends the token at once."""

    __tablename__ = "web_logins"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class LoginFailure(Base):
    """A failed sign-in (wrong password, unknown user): counted per account and per address."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    address: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class LoginLockout(Base):
    """A temporary sign-in lockout of one account or one client address (kept as a record)."""

    __tablename__ = "login_lockouts"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # account | address
    key: Mapped[str] = mapped_column(String(64), index=True)
    failures: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    until: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (CheckConstraint("kind IN ('account', 'address')", name="ck_lockout_kind"),)
