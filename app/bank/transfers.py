"""Money transfers to saved payees: exactly once per idempotency key, within the limits.

See :meth:`Transfers.transfer`. The "day" of the daily transfer limit is the calendar day in
India (IST, UTC+05:30).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.bank.accounts import customer_row, resolve_account_in
from app.bank.clock import ist_day_start, new_reference
from app.bank.db import Database, with_retry
from app.bank.errors import (
    ERRORS_BY_CODE,
    AccountUnavailable,
    BankError,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidAmount,
    LimitExceeded,
    NotFound,
)
from app.bank.models import (
    CLEARING_ACCOUNT_NUMBER,
    Account,
    Beneficiary,
    Card,
    CardBill,
    CardPayment,
    LedgerEntry,
    Transfer,
)
from app.bank.views import TransferView
from app.core.money import format_money
from app.core.settings import Settings

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("999999999999.99")  # what NUMERIC(14, 2) can hold

AmountLike = Decimal | int | float | str


def transfer_view(
    t: Transfer, source: Account, to_name: str, to_masked: str, balance_after: Decimal | None, replayed: bool = False
) -> TransferView:
    """The detached view of a transfer (accounts masked)."""
    return TransferView(
        id=t.id, reference=t.reference, idempotency_key=t.idempotency_key, status=t.status, amount=t.amount,
        currency=t.currency, from_account=source.masked, beneficiary=to_name, to_account=to_masked,
        created_at=t.created_at, completed_at=t.completed_at, balance_after=balance_after, replayed=replayed,
        failure_code=t.failure_code, failure_reason=t.failure_reason, own=t.to_beneficiary_id is None,
    )


def destination_label(s: Session, t: Transfer) -> tuple[str, str]:
    """(name, masked account) of where ``t`` went: the payee, the customer's own account, or their card."""
    if t.beneficiary is not None:
        return t.beneficiary.name, t.beneficiary.masked
    target = t.to_account
    if target is not None and target.customer_id == t.created_by:
        return f"your {target.type} account", target.masked
    card = s.scalar(
        select(Card).join(CardBill, CardBill.card_id == Card.id).join(CardPayment, CardPayment.bill_id == CardBill.id)
        .where(CardPayment.transfer_id == t.id)
    )
    if card is not None:
        return f"your credit card ending {card.last4}", f"XXXX{card.last4}"
    return "the bank", target.masked if target is not None else ""


@dataclass(frozen=True)
class Destination:
    """Where money goes: a saved payee (``beneficiary_id``), one of the customer's own accounts
    (``own_ref``: "savings", "current", last 4 digits) or a bank-internal account (``internal_number``,
    e.g. card payments, shown as ``label``/``masked``)."""

    beneficiary_id: int | None = None
    own_ref: str | None = None
    internal_number: str | None = None
    label: str = ""
    masked: str = ""

    @property
    def third_party(self) -> bool:
        """Only money leaving the customer counts toward the daily transfer limit."""
        return self.beneficiary_id is not None


# Runs inside the transfer's transaction after a successful debit and credit (e.g. mark a card bill paid).
AfterMove = Callable[[Session, Transfer], None]


class Transfers:
    """Transfers, today's totals and the ledger."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @property
    def settings(self) -> Settings:
        return self.db.settings

    def clean_amount(self, amount: AmountLike, currency: str) -> Decimal:
        """``amount`` as a positive two-decimal :class:`Decimal` in the bank's currency, else :class:`InvalidAmount`."""
        if (currency or "").upper() != self.settings.currency:
            raise InvalidAmount(f"Transfers here are in {self.settings.currency} only.")
        if isinstance(amount, bool) or amount is None:
            raise InvalidAmount("Please tell me the amount in rupees, for example ₹2,500.")
        try:
            value = Decimal(str(amount).replace(",", "").replace("₹", "").strip())
        except InvalidOperation:
            raise InvalidAmount("Please tell me the amount in rupees, for example ₹2,500.") from None
        if not value.is_finite():
            raise InvalidAmount("That isn't a valid amount.")
        if value <= 0:
            raise InvalidAmount("The amount must be more than ₹0.")
        if value != value.quantize(CENT):
            raise InvalidAmount("Amounts can have at most two decimal places (paise).")
        if value > MAX_AMOUNT:
            raise InvalidAmount("That amount is far too large to be a valid transfer.")
        return value.quantize(CENT)

    def daily_total(self, customer_id: int) -> Decimal:
        """Sum of the customer's completed transfers to payees today (IST calendar day); moves between
        their own accounts and card-bill payments do not count."""
        with self.db.read() as s:
            return self._daily_total_in(s, customer_id)

    def daily_remaining(self, customer_id: int) -> Decimal:
        """How much more the customer may transfer today."""
        return max(Decimal("0.00"), self.settings.daily_transfer_limit - self.daily_total(customer_id))

    def _daily_total_in(self, session: Session, customer_id: int) -> Decimal:
        start = ist_day_start(self.db.now())
        total = session.scalar(
            select(func.coalesce(func.sum(Transfer.amount), 0)).where(
                Transfer.created_by == customer_id, Transfer.status == "completed", Transfer.created_at >= start,
                Transfer.created_at < start + timedelta(days=1), Transfer.to_beneficiary_id.is_not(None),
            )
        )
        # SUM over the Money column comes back as Money (Decimal) on both backends.
        return Decimal(total or 0).quantize(CENT)

    def transfer(
        self,
        customer_id: int,
        from_ref: str | None,
        beneficiary_id: int,
        amount: AmountLike,
        idempotency_key: str,
        *,
        session_id: str | None = None,
        channel: str = "chat",
        currency: str = "INR",
    ) -> TransferView:
        """Move ``amount`` from the customer's account to a saved payee, exactly once per key.

        In one database transaction: return the earlier transfer if ``idempotency_key`` was
        seen (``replayed=True``, nothing moves again; a replay of a *failed* transfer raises
        the same error again; a key reused for a different request raises
        :class:`IdempotencyConflict`); lock the customer and the two account rows (PostgreSQL
        ``FOR UPDATE`` in id order; SQLite ``BEGIN IMMEDIATE``); check the amount, the
        per-transfer limit, today's total (IST) and the balance; write one debit and one
        credit ledger entry (payees at other banks are credited to the bank's outward
        clearing account). A business failure (limit, funds) is recorded as a ``failed``
        transfer under the key and raised. A concurrent duplicate that loses the race on the
        unique key gets the winner's transfer back.
        """
        return self.move(customer_id, from_ref, Destination(beneficiary_id=beneficiary_id), amount, idempotency_key,
                         session_id=session_id, channel=channel, currency=currency)

    def own_transfer(
        self,
        customer_id: int,
        from_ref: str | None,
        to_ref: str,
        amount: AmountLike,
        idempotency_key: str,
        *,
        session_id: str | None = None,
        channel: str = "chat",
    ) -> TransferView:
        """Move ``amount`` between two of the customer's own accounts, exactly once per key.

        The same machinery as :meth:`transfer` (locks, per-transfer limit, balance, ledger, replay);
        it does not count toward the daily limit for payees, because the money stays the customer's.
        """
        return self.move(customer_id, from_ref, Destination(own_ref=to_ref), amount, idempotency_key,
                         session_id=session_id, channel=channel)

    def move(
        self,
        customer_id: int,
        from_ref: str | None,
        destination: Destination,
        amount: AmountLike,
        idempotency_key: str,
        *,
        session_id: str | None = None,
        channel: str = "chat",
        currency: str = "INR",
        after: AfterMove | None = None,
    ) -> TransferView:
        """Move ``amount`` from the customer's account to ``destination``, exactly once per key
        (see :meth:`transfer`); ``after`` runs in the same transaction once the money has moved."""
        key = (idempotency_key or "").strip()
        if not key or len(key) > 128:
            raise BankError("This transfer is missing a valid request id; please start it again.")
        value = self.clean_amount(amount, currency)

        def attempt() -> tuple[TransferView, BankError | None]:
            try:
                with self.db.write() as s:
                    return self._move_in(s, customer_id, from_ref, destination, value, key, session_id, channel, after)
            except IntegrityError:
                # Another request with the same key committed first: answer with its result.
                with self.db.read() as s:
                    existing = s.scalars(select(Transfer).where(Transfer.idempotency_key == key)).first()
                    if existing is None:
                        raise
                    return self._replay(s, existing, customer_id, from_ref, destination, value)

        view, error = with_retry(attempt)
        if error is not None:
            raise error
        return view

    def _move_in(
        self, s: Session, customer_id: int, from_ref: str | None, destination: Destination, amount: Decimal,
        key: str, session_id: str | None, channel: str, after: AfterMove | None,
    ) -> tuple[TransferView, BankError | None]:
        def find() -> Transfer | None:
            return s.scalars(select(Transfer).where(Transfer.idempotency_key == key)).first()

        existing = find()
        if existing is not None:
            return self._replay(s, existing, customer_id, from_ref, destination, amount)
        customer_row(s, customer_id, lock=True)
        # Re-check under the customer lock: a retry of this request may have committed while we waited.
        existing = find()
        if existing is not None:
            return self._replay(s, existing, customer_id, from_ref, destination, amount)

        source, target, payee, (to_name, to_masked) = self._lock_accounts(s, customer_id, from_ref, destination)
        now = self.db.now()
        failure = self._refusal(s, customer_id, source, amount, destination.third_party)
        transfer = Transfer(
            idempotency_key=key, reference=new_reference("TXN", now), from_account_id=source.id,
            to_beneficiary_id=payee.id if payee else None, to_account_id=target.id, amount=amount,
            currency=source.currency, status="failed" if failure else "completed", channel=channel,
            session_id=session_id, created_by=customer_id, created_at=now,
            failure_code=failure.code if failure else None, failure_reason=str(failure) if failure else None,
        )
        s.add(transfer)
        s.flush()  # the unique idempotency key is enforced here
        balance_after: Decimal | None = None
        if failure is None:
            source.balance = source.balance - amount
            target.balance = target.balance + amount
            s.add_all([
                LedgerEntry(account_id=source.id, transfer_id=transfer.id, amount=-amount, balance_after=source.balance,
                            description=f"To {to_name} {transfer.reference}"[:128], created_at=now),
                LedgerEntry(account_id=target.id, transfer_id=transfer.id, amount=amount, balance_after=target.balance,
                            description=f"From {source.masked} {transfer.reference}", created_at=now),
            ])
            transfer.completed_at = now
            balance_after = source.balance
            s.flush()
            if after is not None:
                after(s, transfer)
        return transfer_view(transfer, source, to_name, to_masked, balance_after), failure

    @staticmethod
    def _target_id(s: Session, customer_id: int, source: Account, destination: Destination
                   ) -> tuple[int, Beneficiary | None, tuple[str, str]]:
        """The target account id, the payee (if any) and how to name the destination."""
        if destination.beneficiary_id is not None:
            payee = s.get(Beneficiary, destination.beneficiary_id)
            if payee is None or payee.customer_id != customer_id:
                raise NotFound("I couldn't find that payee among your saved beneficiaries.")
            target_id = payee.account_id
            if target_id is None:
                target_id = s.scalar(select(Account.id).where(Account.number == CLEARING_ACCOUNT_NUMBER))
                if target_id is None:
                    raise BankError("Transfers to other banks are unavailable right now. Please try again later.")
            if target_id == source.id:
                raise BankError("That payee is the same account you are paying from.")
            return target_id, payee, (payee.name, payee.masked)
        if destination.own_ref is not None:
            own = resolve_account_in(s, customer_id, destination.own_ref)
            if own.id == source.id:
                raise BankError(f"That is the same account ({own.type} {own.masked}); choose two different accounts.")
            return own.id, None, (f"your {own.type} account", own.masked)
        target_id = s.scalar(select(Account.id).where(Account.number == destination.internal_number))
        if target_id is None:
            raise BankError("That payment is unavailable right now. Please try again later.")
        return target_id, None, (destination.label, destination.masked)

    def _lock_accounts(
        self, s: Session, customer_id: int, from_ref: str | None, destination: Destination
    ) -> tuple[Account, Account, Beneficiary | None, tuple[str, str]]:
        """The locked source and target account rows, the payee and the destination's name; raises when
        either account can't be used."""
        source = resolve_account_in(s, customer_id, from_ref)
        target_id, payee, label = self._target_id(s, customer_id, source, destination)
        # Lock both accounts in id order, so two opposite transfers can never deadlock.
        locked: dict[int, Account] = {}
        for account_id in sorted({source.id, target_id}):
            locked[account_id] = s.scalars(
                select(Account).where(Account.id == account_id).with_for_update()
                .execution_options(populate_existing=True)
            ).one()
        source, target = locked[source.id], locked[target_id]
        if source.status != "active":
            raise AccountUnavailable(f"Your {source.type} account {source.masked} is {source.status}; it can't send money.")
        if target.status != "active":
            whose = f"{payee.name}'s account" if payee else f"The {label[0].removeprefix('your ')}"
            raise AccountUnavailable(f"{whose} can't receive money right now.")
        return source, target, payee, label

    def _refusal(self, s: Session, customer_id: int, source: Account, amount: Decimal,
                 third_party: bool = True) -> BankError | None:
        """Why this transfer must fail (per-transfer limit, today's limit for payees, funds), or ``None``."""
        limit = self.settings.per_transfer_limit
        daily_limit = self.settings.daily_transfer_limit
        if amount > limit:
            return LimitExceeded(
                f"{format_money(amount)} is above the chat limit of {format_money(limit)} per transfer. "
                "Please send a smaller amount or use net banking."
            )
        spent = self._daily_total_in(s, customer_id) if third_party else Decimal("0.00")
        if third_party and spent + amount > daily_limit:
            left = max(Decimal("0.00"), daily_limit - spent)
            return LimitExceeded(
                f"That would take you over today's transfer limit of {format_money(daily_limit)}; "
                f"you can send up to {format_money(left)} more today."
            )
        if source.balance < amount:
            return InsufficientFunds(
                f"Your {source.type} account {source.masked} has {format_money(source.balance)}, "
                f"which isn't enough to send {format_money(amount)}."
            )
        return None

    @staticmethod
    def _replay(
        s: Session, t: Transfer, customer_id: int, from_ref: str | None, destination: Destination, amount: Decimal
    ) -> tuple[TransferView, BankError | None]:
        if t.created_by != customer_id:
            raise IdempotencyConflict("This request id was already used; please start the transfer again.")
        source = resolve_account_in(s, customer_id, from_ref)
        if destination.beneficiary_id is not None:
            same_target = t.to_beneficiary_id == destination.beneficiary_id
        elif destination.own_ref is not None:
            same_target = t.to_beneficiary_id is None and t.to_account_id == resolve_account_in(
                s, customer_id, destination.own_ref).id
        else:
            same_target = t.to_beneficiary_id is None and t.to_account is not None and \
                t.to_account.number == destination.internal_number
        if not same_target or t.amount != amount or t.from_account_id != source.id:
            raise IdempotencyConflict(
                "This request id was already used for a different transfer; please confirm the new transfer again."
            )
        debit = s.scalars(
            select(LedgerEntry).where(LedgerEntry.transfer_id == t.id, LedgerEntry.account_id == t.from_account_id)
        ).first()
        name, masked = destination_label(s, t)
        view = transfer_view(t, t.from_account, name, masked, debit.balance_after if debit else None, replayed=True)
        error = ERRORS_BY_CODE.get(t.failure_code or "", BankError)(t.failure_reason or "") if t.status == "failed" else None
        return view, error

    def recent_transfers(self, customer_id: int, limit: int = 5, *, payee_id: int | None = None) -> list[TransferView]:
        """The customer's latest transfers (completed, pending and failed), newest first; only those to
        ``payee_id`` when given."""
        with self.db.read() as s:
            stmt = select(Transfer).where(Transfer.created_by == customer_id)
            if payee_id is not None:
                stmt = stmt.where(Transfer.to_beneficiary_id == payee_id)
            rows = s.scalars(stmt.order_by(Transfer.created_at.desc(), Transfer.id.desc()).limit(limit)).all()
            return [transfer_view(t, t.from_account, *destination_label(s, t), None) for t in rows]

    def ledger(self, transfer_reference: str) -> list[dict[str, Any]]:
        """The ledger entries of one transfer (for audits and tests): account, amount, balance_after."""
        with self.db.read() as s:
            rows = s.execute(
                select(LedgerEntry, Account.number).join(Account, Account.id == LedgerEntry.account_id)
                .join(Transfer, Transfer.id == LedgerEntry.transfer_id)
                .where(Transfer.reference == transfer_reference).order_by(LedgerEntry.id)
            ).all()
            return [
                {"account": number, "amount": e.amount, "balance_after": e.balance_after, "description": e.description}
                for e, number in rows
            ]
