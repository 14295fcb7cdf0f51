"""BankService: the only way the assistant reads or moves money.

Every customer-facing method takes the authenticated ``customer_id`` and only ever looks
at that customer's rows, so a conversation can never see or move someone else's money.
Methods return detached views (:mod:`app.bank.views`) and raise
:class:`~app.bank.errors.BankError` subclasses whose messages can be shown to the customer.

Transfers are exactly-once per idempotency key: see :meth:`BankService.transfer`.
The "day" of the daily transfer limit is the calendar day in India (IST, UTC+05:30).
"""

from __future__ import annotations

import difflib
import json
import math
import re
import secrets
import threading
import uuid
from dataclasses import asdict, is_dataclass
from datetime import date, datetime, time as dtime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.bank.db import init_db, session_scope, with_retry
from app.bank.errors import (
    ERRORS_BY_CODE,
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
from app.bank.models import (
    Account,
    AccountApplication,
    Beneficiary,
    Branch,
    Card,
    Customer,
    DialogueSession,
    Feedback,
    HandoffTicket,
    LedgerEntry,
    LoanProduct,
    OtpChallenge,
    Transfer,
    utcnow,
)
from app.bank.security import burn_password_check, hash_otp, new_otp_code, verify_otp_hash, verify_password
from app.bank.seed import CLEARING_ACCOUNT_NUMBER
from app.bank.views import (
    AccountView,
    ApplicationView,
    BeneficiaryView,
    BranchView,
    CardView,
    CustomerView,
    DialogueSessionView,
    FeedbackView,
    HandoffView,
    LoanProductView,
    OtpIssued,
    OtpResult,
    TransferView,
    format_inr,
)
from app.core.settings import Settings, get_settings

IST = timezone(timedelta(hours=5, minutes=30), name="IST")
CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("999999999999.99")  # what NUMERIC(14, 2) can hold
BRANCH_RADIUS_KM = 40.0  # "near" stops here: no Delhi branches for a Mumbai pincode
_ACCOUNT_ORDER = {"savings": 0, "current": 1}
_sms_lock = threading.Lock()

AmountLike = Decimal | int | float | str


def mask_phone(phone: str) -> str:
    """``+919820011234`` → ``+91XXXXXX1234``."""
    digits = phone.strip()
    if len(digits) <= 7:
        return "X" * max(0, len(digits) - 2) + digits[-2:]
    return digits[:3] + "X" * (len(digits) - 7) + digits[-4:]


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in kilometres."""
    r = 6371.0088
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))


def ist_day_start(moment: datetime) -> datetime:
    """Start (as UTC) of the IST calendar day containing ``moment``."""
    local: date = moment.astimezone(IST).date()
    return datetime.combine(local, dtime(0, 0), tzinfo=IST).astimezone(timezone.utc)


def _json_default(value: Any) -> Any:
    # Dialogue state holds amounts, dates and small dataclasses/enums; keep them readable.
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, Enum):
        return value.value
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"dialogue state value of type {type(value).__name__} is not JSON-serialisable")


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", " ", text.lower())).strip()


def _new_reference(prefix: str, now: datetime) -> str:
    return f"{prefix}{now.astimezone(IST):%y%m%d}{secrets.token_hex(4).upper()}"


class BankService:
    """The demo bank's operations, each in its own database transaction.

    ``url`` defaults to ``settings.db_url``; ``settings`` to :func:`get_settings`;
    ``clock`` (returns aware UTC "now") lets tests move time for OTP expiry and day limits.
    The schema is created on construction (idempotent); seed data comes from
    :func:`app.bank.seed.seed`.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        settings: Settings | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        if url is None and self.settings.database_url is None:
            self.settings.home.mkdir(parents=True, exist_ok=True)
        self.url = url or self.settings.db_url
        self._clock = clock or utcnow
        init_db(self.url)

    # ------------------------------------------------------------------ helpers
    def now(self) -> datetime:
        """The service's notion of now (aware UTC)."""
        return self._clock()

    def _read(self) -> Any:
        return session_scope(self.url)

    def _write(self) -> Any:
        return session_scope(self.url, write=True)

    @staticmethod
    def _customer_view(c: Customer) -> CustomerView:
        return CustomerView(
            id=c.id, username=c.username, full_name=c.full_name, role=c.role, city=c.city,
            phone_masked=mask_phone(c.phone) if c.phone else "", email=c.email,
        )

    @staticmethod
    def _account_view(a: Account) -> AccountView:
        return AccountView(
            id=a.id, number=a.number, masked=a.masked, type=a.type, currency=a.currency, balance=a.balance,
            status=a.status, branch=a.branch.name if a.branch else None, ifsc=a.branch.ifsc if a.branch else None,
        )

    @staticmethod
    def _beneficiary_view(b: Beneficiary) -> BeneficiaryView:
        return BeneficiaryView(
            id=b.id, name=b.name, nickname=b.nickname, masked_account=b.masked, ifsc=b.ifsc,
            bank_name=b.bank_name, internal=b.account_id is not None,
        )

    @staticmethod
    def _card_view(c: Card, already_blocked: bool = False) -> CardView:
        return CardView(
            id=c.id, last4=c.last4, type=c.type, network=c.network, variant=c.variant, status=c.status,
            blocked_at=c.blocked_at, already_blocked=already_blocked,
        )

    @staticmethod
    def _customer_row(session: Session, customer_id: int, *, lock: bool = False) -> Customer:
        stmt = select(Customer).where(Customer.id == customer_id)
        if lock:
            stmt = stmt.with_for_update().execution_options(populate_existing=True)
        customer = session.scalars(stmt).first()
        if customer is None or customer.role != "customer":
            raise NotFound("I couldn't find your customer profile. Please log in again.")
        return customer

    # ------------------------------------------------------------------ customers
    def authenticate(self, username: str, password: str) -> CustomerView | None:
        """The customer or staff member with these credentials, else ``None``.

        The password check is constant-time and an unknown username costs the same as a
        wrong password, so timing does not reveal which usernames exist.
        """
        with self._read() as s:
            person = s.scalars(select(Customer).where(Customer.username == username.strip().lower())).first()
            if person is None or person.role == "system":
                burn_password_check(password)
                return None
            if not verify_password(password, person.password_hash):
                return None
            return self._customer_view(person)

    def get_customer(self, username: str) -> CustomerView | None:
        """The customer or staff member called ``username`` (case-insensitive), else ``None``."""
        with self._read() as s:
            person = s.scalars(select(Customer).where(Customer.username == username.strip().lower())).first()
            return None if person is None or person.role == "system" else self._customer_view(person)

    def get_customer_by_id(self, customer_id: int) -> CustomerView | None:
        """The person with this id, else ``None``."""
        with self._read() as s:
            person = s.get(Customer, customer_id)
            return None if person is None or person.role == "system" else self._customer_view(person)

    # ------------------------------------------------------------------ accounts
    @staticmethod
    def _accounts_of(session: Session, customer_id: int) -> list[Account]:
        rows = session.scalars(select(Account).where(Account.customer_id == customer_id)).all()
        return sorted(rows, key=lambda a: (_ACCOUNT_ORDER.get(a.type, 9), a.id))

    def accounts(self, customer_id: int) -> list[AccountView]:
        """The customer's accounts, savings first."""
        with self._read() as s:
            return [self._account_view(a) for a in self._accounts_of(s, customer_id)]

    @classmethod
    def _resolve_account_in(cls, session: Session, customer_id: int, ref: str | None) -> Account:
        accounts = cls._accounts_of(session, customer_id)
        if not accounts:
            raise NotFound("You don't have any accounts with us yet.")
        listing = ", ".join(f"{a.type.capitalize()} {a.masked}" for a in accounts)
        text = _norm(ref or "savings")
        words = text.split()
        if "saving" in text or "sb" in words:
            wanted = "savings"
        elif "current" in text or "ca" in words:
            wanted = "current"
        else:
            wanted = ""
        if wanted:
            matches = [a for a in accounts if a.type == wanted]
            if not matches:
                raise NotFound(f"You don't have a {wanted} account. Your accounts: {listing}.", choices=[listing])
        else:
            digits = re.sub(r"\D", "", text)
            if len(digits) < 4:
                raise NotFound(f"I couldn't tell which account you mean by '{ref}'. Your accounts: {listing}.")
            matches = [a for a in accounts if a.number == digits or a.number.endswith(digits)]
            if not matches:
                raise NotFound(f"You have no account ending {digits[-4:]}. Your accounts: {listing}.")
        if len(matches) > 1:
            labels = [f"{a.type.capitalize()} {a.masked}" for a in matches]
            raise Ambiguous(f"Which account: {', '.join(labels)}?", choices=labels)
        return matches[0]

    def resolve_account(self, customer_id: int, ref: str | None = None) -> AccountView:
        """One of the customer's accounts from "savings" / "current" / last 4 digits / full number.

        ``None`` means the savings account. Raises :class:`NotFound` (also for another
        customer's account number — the message never reveals that it exists) or
        :class:`Ambiguous`.
        """
        with self._read() as s:
            return self._account_view(self._resolve_account_in(s, customer_id, ref))

    def balance(self, customer_id: int, ref: str | None = None) -> AccountView:
        """Alias of :meth:`resolve_account`: the account view carries the balance."""
        return self.resolve_account(customer_id, ref)

    # ------------------------------------------------------------------ beneficiaries
    def beneficiaries(self, customer_id: int) -> list[BeneficiaryView]:
        """The customer's saved payees, by name."""
        with self._read() as s:
            rows = s.scalars(
                select(Beneficiary).where(Beneficiary.customer_id == customer_id).order_by(Beneficiary.id)
            ).all()
            return [self._beneficiary_view(b) for b in rows]

    def resolve_beneficiary(self, customer_id: int, name: str) -> BeneficiaryView:
        """The customer's payee called ``name``: exact name or nickname (any case), then a
        first/last name, then a prefix, then a close spelling (difflib).

        Raises :class:`Ambiguous` listing the candidates, or :class:`NotFound` listing the
        customer's payees.
        """
        with self._read() as s:
            rows = list(
                s.scalars(select(Beneficiary).where(Beneficiary.customer_id == customer_id).order_by(Beneficiary.id))
            )
            return self._beneficiary_view(self._match_beneficiary(rows, name))

    @staticmethod
    def _match_beneficiary(rows: Sequence[Beneficiary], name: str) -> Beneficiary:
        known = ", ".join(b.name for b in rows)
        query = _norm(name or "")
        query = re.sub(r"^(to|my|mr|mrs|ms|dr)\s+", "", query)
        if not rows:
            raise NotFound("You have no saved payees yet. Add one in net banking first.")
        if not query:
            raise NotFound(f"Who should I send it to? Your saved payees: {known}.", choices=[b.name for b in rows])

        def pick(found: Iterable[Beneficiary]) -> Beneficiary | None:
            unique = list(dict.fromkeys(found))
            if len(unique) == 1:
                return unique[0]
            if len(unique) > 1:
                names = [b.name for b in unique]
                raise Ambiguous(f"I found more than one payee like that: {', '.join(names)}. Which one?", choices=names)
            return None

        def keys(b: Beneficiary) -> list[str]:
            return [_norm(b.name)] + ([_norm(b.nickname)] if b.nickname else [])

        stages: list[Callable[[Beneficiary], bool]] = [
            lambda b: query in keys(b),
            lambda b: query in _norm(b.name).split(),
            lambda b: len(query) >= 3 and any(k.startswith(query) or any(t.startswith(query) for t in k.split()) for k in keys(b)),
        ]
        for stage in stages:
            chosen = pick(b for b in rows if stage(b))
            if chosen is not None:
                return chosen
        vocabulary: dict[str, list[Beneficiary]] = {}
        for b in rows:
            for k in keys(b) + _norm(b.name).split():
                vocabulary.setdefault(k, []).append(b)
        close = difflib.get_close_matches(query, list(vocabulary), n=5, cutoff=0.75)
        chosen = pick(b for k in close for b in vocabulary[k])
        if chosen is not None:
            return chosen
        raise NotFound(f"I couldn't find a payee called '{name}'. Your saved payees: {known}.", choices=[b.name for b in rows])

    # ------------------------------------------------------------------ transfers
    def _clean_amount(self, amount: AmountLike, currency: str) -> Decimal:
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
        """Sum of the customer's completed transfers today (IST calendar day)."""
        with self._read() as s:
            return self._daily_total_in(s, customer_id)

    def daily_remaining(self, customer_id: int) -> Decimal:
        """How much more the customer may transfer today."""
        return max(Decimal("0.00"), self.settings.daily_transfer_limit - self.daily_total(customer_id))

    def _daily_total_in(self, session: Session, customer_id: int) -> Decimal:
        start = ist_day_start(self.now())
        total = session.scalar(
            select(func.coalesce(func.sum(Transfer.amount), 0)).where(
                Transfer.created_by == customer_id, Transfer.status == "completed", Transfer.created_at >= start
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
        key = (idempotency_key or "").strip()
        if not key or len(key) > 128:
            raise BankError("This transfer is missing a valid request id; please start it again.")
        value = self._clean_amount(amount, currency)

        def attempt() -> tuple[TransferView, BankError | None]:
            try:
                with self._write() as s:
                    return self._transfer_in(s, customer_id, from_ref, beneficiary_id, value, key, session_id, channel)
            except IntegrityError:
                # Another request with the same key committed first: answer with its result.
                with self._read() as s:
                    existing = s.scalars(select(Transfer).where(Transfer.idempotency_key == key)).first()
                    if existing is None:
                        raise
                    return self._replay(s, existing, customer_id, from_ref, beneficiary_id, value)

        view, error = with_retry(attempt)
        if error is not None:
            raise error
        return view

    def _transfer_in(
        self, s: Session, customer_id: int, from_ref: str | None, beneficiary_id: int, amount: Decimal,
        key: str, session_id: str | None, channel: str,
    ) -> tuple[TransferView, BankError | None]:
        def find() -> Transfer | None:
            return s.scalars(select(Transfer).where(Transfer.idempotency_key == key)).first()

        existing = find()
        if existing is not None:
            return self._replay(s, existing, customer_id, from_ref, beneficiary_id, amount)
        self._customer_row(s, customer_id, lock=True)
        # Re-check under the customer lock: a retry of this request may have committed while we waited.
        existing = find()
        if existing is not None:
            return self._replay(s, existing, customer_id, from_ref, beneficiary_id, amount)

        source = self._resolve_account_in(s, customer_id, from_ref)
        payee = s.get(Beneficiary, beneficiary_id)
        if payee is None or payee.customer_id != customer_id:
            raise NotFound("I couldn't find that payee among your saved beneficiaries.")
        target_id = payee.account_id
        if target_id is None:
            target_id = s.scalar(select(Account.id).where(Account.number == CLEARING_ACCOUNT_NUMBER))
            if target_id is None:
                raise BankError("Transfers to other banks are unavailable right now. Please try again later.")
        if target_id == source.id:
            raise BankError("That payee is the same account you are paying from.")
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
            raise AccountUnavailable(f"{payee.name}'s account can't receive money right now.")

        now = self.now()
        failure: BankError | None = None
        limit = self.settings.per_transfer_limit
        daily_limit = self.settings.daily_transfer_limit
        if amount > limit:
            failure = LimitExceeded(
                f"{format_inr(amount)} is above the chat limit of {format_inr(limit)} per transfer. "
                "Please send a smaller amount or use net banking."
            )
        else:
            spent = self._daily_total_in(s, customer_id)
            if spent + amount > daily_limit:
                left = max(Decimal("0.00"), daily_limit - spent)
                failure = LimitExceeded(
                    f"That would take you over today's transfer limit of {format_inr(daily_limit)}; "
                    f"you can send up to {format_inr(left)} more today."
                )
            elif source.balance < amount:
                failure = InsufficientFunds(
                    f"Your {source.type} account {source.masked} has {format_inr(source.balance)}, "
                    f"which isn't enough to send {format_inr(amount)}."
                )

        transfer = Transfer(
            idempotency_key=key, reference=_new_reference("TXN", now), from_account_id=source.id,
            to_beneficiary_id=payee.id, to_account_id=target.id, amount=amount, currency=source.currency,
            status="failed" if failure else "completed", channel=channel, session_id=session_id,
            created_by=customer_id, created_at=now,
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
                            description=f"To {payee.name} {transfer.reference}", created_at=now),
                LedgerEntry(account_id=target.id, transfer_id=transfer.id, amount=amount, balance_after=target.balance,
                            description=f"From {source.masked} {transfer.reference}", created_at=now),
            ])
            transfer.completed_at = now
            balance_after = source.balance
            s.flush()
        return self._transfer_view(transfer, source, payee, balance_after), failure

    @staticmethod
    def _transfer_view(
        t: Transfer, source: Account, payee: Beneficiary, balance_after: Decimal | None, replayed: bool = False
    ) -> TransferView:
        return TransferView(
            id=t.id, reference=t.reference, idempotency_key=t.idempotency_key, status=t.status, amount=t.amount,
            currency=t.currency, from_account=source.masked, beneficiary=payee.name, to_account=payee.masked,
            created_at=t.created_at, completed_at=t.completed_at, balance_after=balance_after, replayed=replayed,
            failure_code=t.failure_code, failure_reason=t.failure_reason,
        )

    def _replay(
        self, s: Session, t: Transfer, customer_id: int, from_ref: str | None, beneficiary_id: int, amount: Decimal
    ) -> tuple[TransferView, BankError | None]:
        if t.created_by != customer_id:
            raise IdempotencyConflict("This request id was already used; please start the transfer again.")
        source = self._resolve_account_in(s, customer_id, from_ref)
        if t.to_beneficiary_id != beneficiary_id or t.amount != amount or t.from_account_id != source.id:
            raise IdempotencyConflict(
                "This request id was already used for a different transfer; please confirm the new transfer again."
            )
        debit = s.scalars(
            select(LedgerEntry).where(LedgerEntry.transfer_id == t.id, LedgerEntry.account_id == t.from_account_id)
        ).first()
        view = self._transfer_view(t, t.from_account, t.beneficiary, debit.balance_after if debit else None, replayed=True)
        error = ERRORS_BY_CODE.get(t.failure_code or "", BankError)(t.failure_reason or "") if t.status == "failed" else None
        return view, error

    def recent_transfers(self, customer_id: int, limit: int = 5) -> list[TransferView]:
        """The customer's latest transfers (completed and failed), newest first."""
        with self._read() as s:
            rows = s.scalars(
                select(Transfer).where(Transfer.created_by == customer_id)
                .order_by(Transfer.created_at.desc(), Transfer.id.desc()).limit(limit)
            ).all()
            return [self._transfer_view(t, t.from_account, t.beneficiary, None) for t in rows]

    def ledger(self, transfer_reference: str) -> list[dict[str, Any]]:
        """The ledger entries of one transfer (for audits and tests): account, amount, balance_after."""
        with self._read() as s:
            rows = s.execute(
                select(LedgerEntry, Account.number).join(Account, Account.id == LedgerEntry.account_id)
                .join(Transfer, Transfer.id == LedgerEntry.transfer_id)
                .where(Transfer.reference == transfer_reference).order_by(LedgerEntry.id)
            ).all()
            return [
                {"account": number, "amount": e.amount, "balance_after": e.balance_after, "description": e.description}
                for e, number in rows
            ]

    # ------------------------------------------------------------------ OTP
    def _active_lockout(self, s: Session, customer_id: int, now: datetime) -> datetime | None:
        return s.scalar(
            select(func.max(OtpChallenge.locked_until)).where(
                OtpChallenge.customer_id == customer_id, OtpChallenge.locked_until > now
            )
        )

    def _lockout_message(self, until: datetime, now: datetime) -> str:
        minutes = max(1, math.ceil((until - now).total_seconds() / 60))
        return (
            f"Too many wrong OTPs. For your safety, OTPs are paused for {minutes} more minute"
            f"{'s' if minutes != 1 else ''} (until {until.astimezone(IST):%H:%M} IST)."
        )

    def issue_otp(self, customer_id: int, purpose: str, reference: str, *, description: str | None = None) -> OtpIssued:
        """Send a 6-digit OTP for ``purpose``/``reference`` by SMS (appended to ``outbox/sms.log``).

        The code is stored only as a salted hash; an earlier pending OTP for the same
        purpose and reference stops working. Raises :class:`OtpLocked` during a lockout.
        ``description`` is the SMS wording (e.g. "a transfer of ₹25,000.00 to Ravi Kumar").
        """
        ttl = self.settings.otp_ttl_seconds

        def run() -> tuple[OtpIssued, str]:
            with self._write() as s:
                customer = self._customer_row(s, customer_id, lock=True)
                now = self.now()
                until = self._active_lockout(s, customer_id, now)
                if until is not None:
                    raise OtpLocked(self._lockout_message(until, now))
                for old in s.scalars(
                    select(OtpChallenge).where(
                        OtpChallenge.customer_id == customer_id, OtpChallenge.purpose == purpose,
                        OtpChallenge.reference == reference, OtpChallenge.status == "pending",
                    )
                ):
                    old.status = "expired"
                challenge_id = uuid.uuid4().hex
                code = new_otp_code()
                expires = now + timedelta(seconds=ttl)
                s.add(OtpChallenge(
                    id=challenge_id, customer_id=customer_id, purpose=purpose, reference=reference,
                    code_hash=hash_otp(code, challenge_id), created_at=now, expires_at=expires,
                    max_attempts=self.settings.otp_max_attempts, status="pending",
                ))
                phone = mask_phone(customer.phone) if customer.phone else "your registered mobile"
                minutes = max(1, round(ttl / 60))
                what = description or re.sub(r"[_\s]+", " ", purpose).strip().lower() or "your request"
                sms = (
                    f"Your Sahayak OTP for {what} is {code}. "
                    f"Valid {minutes} min. Never share it."
                )
                return OtpIssued(challenge_id=challenge_id, expires_at=expires, sms_text=sms, masked_phone=phone), phone

        issued, phone = with_retry(run)
        # Written after the commit: never "send" a code for a challenge that does not exist.
        self._send_sms(phone, issued.sms_text)
        return issued

    def _send_sms(self, phone: str, text: str) -> None:
        outbox = self.settings.outbox_dir
        outbox.mkdir(parents=True, exist_ok=True)
        line = f"[{self.now().astimezone(IST).isoformat(timespec='seconds')}] To {phone}: {text}\n"
        with _sms_lock, open(outbox / "sms.log", "a", encoding="utf-8") as fh:
            fh.write(line)

    def verify_otp(self, customer_id: int, challenge_id: str, code: str, *, reference: str | None = None) -> OtpResult:
        """Check ``code`` for the customer's challenge (and ``reference`` when given).

        Wrong codes count; after ``otp_max_attempts`` the customer is locked out for
        ``otp_lockout_minutes``. Expired, superseded, already-used, another customer's or
        another request's challenges never verify.
        """

        def run() -> OtpResult:
            with self._write() as s:
                now = self.now()
                ch = s.scalars(
                    select(OtpChallenge).where(OtpChallenge.id == str(challenge_id)).with_for_update()
                    .execution_options(populate_existing=True)
                ).first()
                if ch is None or ch.customer_id != customer_id:
                    return OtpResult(ok=False, attempts_left=0, reason="not_found",
                                     message="That OTP request isn't valid. Let me send you a new OTP.")
                if reference is not None and ch.reference != reference:
                    return OtpResult(ok=False, attempts_left=0, reason="wrong_reference",
                                     message="That OTP was sent for a different request. Let me send you a new OTP.")
                until = self._active_lockout(s, customer_id, now)
                if until is not None:
                    return OtpResult(ok=False, attempts_left=0, locked=True, reason="locked",
                                     message=self._lockout_message(until, now))
                left = max(0, ch.max_attempts - ch.attempts)
                if ch.status == "verified":
                    return OtpResult(ok=False, attempts_left=0, reason="already_used",
                                     message="That OTP has already been used.")
                if ch.status != "pending" or now >= ch.expires_at:
                    if ch.status == "pending":
                        ch.status = "expired"
                    return OtpResult(ok=False, attempts_left=0, expired=True, reason="expired",
                                     message="That OTP has expired. I can send you a new one.")
                clean = re.sub(r"\s", "", str(code or ""))
                if re.fullmatch(r"\d{6}", clean) and verify_otp_hash(clean, ch.id, ch.code_hash):
                    ch.status = "verified"
                    ch.verified_at = now
                    return OtpResult(ok=True, attempts_left=left, reason="verified", message="OTP verified.")
                ch.attempts += 1
                left = max(0, ch.max_attempts - ch.attempts)
                if left == 0:
                    ch.status = "locked"
                    ch.locked_until = now + timedelta(minutes=self.settings.otp_lockout_minutes)
                    return OtpResult(ok=False, attempts_left=0, locked=True, reason="locked",
                                     message=self._lockout_message(ch.locked_until, now))
                return OtpResult(ok=False, attempts_left=left, reason="wrong_code",
                                 message=f"That OTP is not correct. {left} attempt{'s' if left != 1 else ''} left.")

        return with_retry(run)

    # ------------------------------------------------------------------ cards
    def cards(self, customer_id: int) -> list[CardView]:
        """The customer's cards, debit first."""
        with self._read() as s:
            rows = s.scalars(select(Card).where(Card.customer_id == customer_id).order_by(Card.type.desc(), Card.id)).all()
            return [self._card_view(c) for c in rows]

    @staticmethod
    def _resolve_card_in(s: Session, customer_id: int, card_ref: str | None) -> Card:
        rows = list(s.scalars(select(Card).where(Card.customer_id == customer_id).order_by(Card.id)))
        if not rows:
            raise NotFound("You don't have any cards with us.")
        listing = ", ".join(f"{c.type} card ending {c.last4}" for c in rows)
        text = _norm(card_ref or "")
        digits = re.sub(r"\D", "", text)
        if len(digits) >= 4:
            matches = [c for c in rows if c.last4 == digits[-4:]]
            if not matches:
                raise NotFound(f"You have no card ending {digits[-4:]}. Your cards: {listing}.")
        elif "debit" in text or "atm" in text:
            matches = [c for c in rows if c.type == "debit"]
        elif "credit" in text:
            matches = [c for c in rows if c.type == "credit"]
        else:
            matches = rows
        if not matches:
            raise NotFound(f"I couldn't find that card. Your cards: {listing}.")
        if len(matches) > 1:
            labels = [f"{c.network} {c.type} card ending {c.last4}" for c in matches]
            raise Ambiguous(f"Which card: {' or '.join(labels)}?", choices=labels)
        return matches[0]

    def resolve_card(self, customer_id: int, card_ref: str | None) -> CardView:
        """One of the customer's cards from last 4 digits or "debit"/"credit"."""
        with self._read() as s:
            return self._card_view(self._resolve_card_in(s, customer_id, card_ref))

    def block_card(self, customer_id: int, card_ref: str | None, *, reason: str = "blocked by customer in chat") -> CardView:
        """Block one of the customer's cards immediately.

        A card that is already blocked comes back with ``already_blocked=True`` (not an
        error). There is deliberately no unblock here: unblocking needs the branch or
        phone banking.
        """

        def run() -> CardView:
            with self._write() as s:
                card = self._resolve_card_in(s, customer_id, card_ref)
                card = s.scalars(
                    select(Card).where(Card.id == card.id).with_for_update().execution_options(populate_existing=True)
                ).one()
                if card.status == "blocked":
                    return self._card_view(card, already_blocked=True)
                card.status = "blocked"
                card.blocked_at = self.now()
                card.blocked_reason = reason[:128]
                s.flush()
                return self._card_view(card)

        return with_retry(run)

    # ------------------------------------------------------------------ branches
    def branches_near(self, query: str, limit: int = 3, *, kind: str | None = None) -> list[BranchView]:
        """Branches/ATMs near a pincode or a place name.

        A 6-digit pincode: branches with exactly that pincode first, then the nearest
        others (haversine from the pincode's location, estimated from branches sharing the
        longest pincode prefix when none has it). A place: branches in that area first, then
        the nearest others; a city name lists that city's branches; small misspellings are
        tolerated. ``kind="atm"`` or ``"branch"`` keeps only places offering it.
        Raises :class:`NotFound` when the place is unknown.
        """
        with self._read() as s:
            rows = list(s.scalars(select(Branch).order_by(Branch.code)))
        if kind in ("atm", "branch"):
            rows = [b for b in rows if b.kind in (kind, "both")]
        if not rows:
            raise NotFound("We have no branches or ATMs on record.")
        cities = sorted({b.city for b in rows})
        text = (query or "").strip()
        pin_match = re.search(r"(?<!\d)(\d{3}\s?\d{3})(?!\d)", text)
        pin = re.sub(r"\s", "", pin_match.group(1)) if pin_match else ""
        if pin:
            exact = [b for b in rows if b.pincode == pin]
            anchor_rows = exact
            for size in range(5, 2, -1):
                if anchor_rows:
                    break
                anchor_rows = [b for b in rows if b.pincode[:size] == pin[:size]]
            if not anchor_rows:
                raise NotFound(f"We have no branches near pincode {pin} yet. We are in {', '.join(cities)}.")
            return self._nearest(rows, anchor_rows, exact, limit)
        q = _norm(text)
        q = re.sub(r"\b(near|nearest|in|at|the|branch|branches|atm|atms|me|my|area)\b", " ", q)
        q = re.sub(r"\s+", " ", q).strip()
        if not q:
            raise NotFound("Tell me a pincode or an area, for example 400050 or Bandra.")
        for term in [q] + difflib.get_close_matches(q, sorted({_norm(b.area) for b in rows} | {_norm(c) for c in cities}), n=1, cutoff=0.75):
            area_hits = [b for b in rows if _norm(b.area) == term or term in _norm(b.area).split()
                         or (len(term) >= 4 and (_norm(b.area) in term or term in _norm(b.area)))]
            if area_hits:
                return self._nearest(rows, area_hits, area_hits, limit)
            city_hits = [b for b in rows if _norm(b.city) == term or term in _norm(b.city)]
            if city_hits:
                city_hits.sort(key=lambda b: (b.kind != "both", b.code))
                return [self._branch_view(b, None) for b in city_hits[:limit]]
            name_hits = [b for b in rows if len(term) >= 4 and (term in _norm(b.name) or term in _norm(b.address))]
            if name_hits:
                return self._nearest(rows, name_hits, name_hits, limit)
        raise NotFound(f"I don't know a branch near '{text}'. Try a pincode, or one of: {', '.join(cities)}.")

    def _nearest(self, rows: list[Branch], anchor_rows: list[Branch], first: list[Branch], limit: int) -> list[BranchView]:
        lat = sum(b.latitude for b in anchor_rows) / len(anchor_rows)
        lon = sum(b.longitude for b in anchor_rows) / len(anchor_rows)
        dist = {b.code: haversine_km(lat, lon, b.latitude, b.longitude) for b in rows}
        head = sorted(first, key=lambda b: dist[b.code])
        tail = sorted((b for b in rows if b not in head and dist[b.code] <= BRANCH_RADIUS_KM), key=lambda b: dist[b.code])
        return [self._branch_view(b, dist[b.code]) for b in (head + tail)[:limit]]

    @staticmethod
    def _branch_view(b: Branch, distance: float | None) -> BranchView:
        return BranchView(
            code=b.code, name=b.name, kind=b.kind, address=b.address, area=b.area, city=b.city, pincode=b.pincode,
            latitude=b.latitude, longitude=b.longitude, phone=b.phone, hours=b.hours, ifsc=b.ifsc,
            distance_km=None if distance is None else round(distance, 1),
        )

    # ------------------------------------------------------------------ products and applications
    def loan_products(self) -> list[LoanProductView]:
        """Every loan product (numbers from data/bank_facts.yaml via the seed)."""
        with self._read() as s:
            rows = s.scalars(select(LoanProduct).order_by(LoanProduct.id)).all()
            return [self._loan_view(p) for p in rows]

    def loan_product(self, kind: str) -> LoanProductView:
        """The loan product of one kind (home, car, personal, education, gold)."""
        with self._read() as s:
            row = s.scalars(select(LoanProduct).where(LoanProduct.kind == (kind or "").strip().lower())).first()
            if row is None:
                kinds = ", ".join(s.scalars(select(LoanProduct.kind).order_by(LoanProduct.id)))
                raise NotFound(f"We don't offer a '{kind}' loan. Our loans: {kinds}.")
            return self._loan_view(row)

    @staticmethod
    def _loan_view(p: LoanProduct) -> LoanProductView:
        return LoanProductView(
            kind=p.kind, name=p.name, rate_min=p.rate_min, rate_max=p.rate_max, max_tenure_years=p.max_tenure_years,
            min_amount=p.min_amount, max_amount=p.max_amount, processing_fee_pct=p.processing_fee_pct,
        )

    def open_account(self, customer_id: int, account_type: str) -> ApplicationView:
        """Submit a request to open a savings or current account.

        Asking again while an application of the same type is still ``submitted`` returns
        that application instead of filing a duplicate.
        """
        wanted = _norm(account_type or "")
        if "saving" in wanted:
            wanted = "savings"
        elif "current" in wanted:
            wanted = "current"
        else:
            raise BankError("I can open a savings or a current account. Which one would you like?")

        def run() -> ApplicationView:
            with self._write() as s:
                self._customer_row(s, customer_id, lock=True)
                app = s.scalars(
                    select(AccountApplication).where(
                        AccountApplication.customer_id == customer_id, AccountApplication.account_type == wanted,
                        AccountApplication.status == "submitted",
                    )
                ).first()
                if app is None:
                    now = self.now()
                    app = AccountApplication(customer_id=customer_id, account_type=wanted,
                                             reference=_new_reference("APP-", now), status="submitted", created_at=now)
                    s.add(app)
                    s.flush()
                return ApplicationView(reference=app.reference, account_type=app.account_type, status=app.status,
                                       created_at=app.created_at)

        return with_retry(run)

    # ------------------------------------------------------------------ dialogue sessions
    @staticmethod
    def _session_view(row: DialogueSession) -> DialogueSessionView:
        return DialogueSessionView(
            session_id=row.session_id, user_id=row.user_id, channel=row.channel, state=json.loads(row.state or "{}"),
            chatml=row.chatml or "", created_at=row.created_at, updated_at=row.updated_at, expires_at=row.expires_at,
        )

    def load_session(self, session_id: str, *, include_expired: bool = False) -> DialogueSessionView | None:
        """The saved dialogue session, or ``None`` if unknown or idle past ``session_ttl_minutes``."""
        with self._read() as s:
            row = s.get(DialogueSession, session_id)
            if row is None or (not include_expired and row.expires_at <= self.now()):
                return None
            return self._session_view(row)

    def save_session(
        self, session_id: str, user_id: str | None, channel: str, state: dict[str, Any], chatml: str
    ) -> DialogueSessionView:
        """Create or replace a dialogue session; each save extends its expiry by the TTL.

        ``state`` must be JSON-serialisable (Decimal, datetime, date, set, Enum, dataclasses
        and pydantic models are converted: Decimal becomes a string).
        """
        payload = json.dumps(state, default=_json_default, ensure_ascii=False, sort_keys=True)

        def run() -> DialogueSessionView:
            with self._write() as s:
                now = self.now()
                row = s.get(DialogueSession, session_id, with_for_update=True)
                if row is None:
                    row = DialogueSession(session_id=session_id, created_at=now)
                    s.add(row)
                row.user_id, row.channel, row.state, row.chatml = user_id, channel, payload, chatml
                row.updated_at = now
                row.expires_at = now + timedelta(minutes=self.settings.session_ttl_minutes)
                s.flush()
                return self._session_view(row)

        try:
            return with_retry(run)
        except IntegrityError:  # two first saves of one session raced; the row exists now
            return with_retry(run)

    def delete_session(self, session_id: str) -> bool:
        """Forget a dialogue session (logout); True if there was one."""
        with self._write() as s:
            row = s.get(DialogueSession, session_id)
            if row is None:
                return False
            s.delete(row)
            return True

    # ------------------------------------------------------------------ hand-off and feedback
    @staticmethod
    def _handoff_view(t: HandoffTicket) -> HandoffView:
        return HandoffView(
            reference=t.reference, session_id=t.session_id, user_id=t.user_id, reason=t.reason,
            transcript=t.transcript, status=t.status, created_at=t.created_at, claimed_by=t.claimed_by,
        )

    def create_handoff(self, session_id: str, user_id: str | None, reason: str, transcript: str) -> str:
        """Open a ticket for a human agent; returns its reference (``HO-…``).

        ``transcript`` must already be redacted by the caller.
        """
        with self._write() as s:
            now = self.now()
            ticket = HandoffTicket(
                reference=_new_reference("HO-", now), session_id=session_id, user_id=user_id, reason=reason[:256],
                transcript=transcript, status="open", created_at=now,
            )
            s.add(ticket)
            s.flush()
            return ticket.reference

    def list_handoffs(self, status: str | None = "open") -> list[HandoffView]:
        """Hand-off tickets with this status (``None`` = all), oldest first."""
        with self._read() as s:
            stmt = select(HandoffTicket).order_by(HandoffTicket.created_at, HandoffTicket.id)
            if status:
                stmt = stmt.where(HandoffTicket.status == status)
            return [self._handoff_view(t) for t in s.scalars(stmt)]

    def claim_handoff(self, reference: str, staff_username: str) -> HandoffView:
        """A staff member takes an open ticket (a claimed ticket cannot be claimed twice)."""
        with self._write() as s:
            staff = s.scalars(select(Customer).where(Customer.username == staff_username)).first()
            if staff is None or staff.role != "staff":
                raise BankError("Only staff can claim hand-off tickets.")
            ticket = s.scalars(select(HandoffTicket).where(HandoffTicket.reference == reference).with_for_update()).first()
            if ticket is None:
                raise NotFound(f"No hand-off ticket {reference}.")
            if ticket.status != "open":
                raise BankError(f"Ticket {reference} is already {ticket.status} by {ticket.claimed_by or 'someone'}.")
            ticket.status, ticket.claimed_by, ticket.claimed_at = "claimed", staff.username, self.now()
            return self._handoff_view(ticket)

    def close_handoff(self, reference: str) -> HandoffView:
        """Mark a ticket as resolved."""
        with self._write() as s:
            ticket = s.scalars(select(HandoffTicket).where(HandoffTicket.reference == reference).with_for_update()).first()
            if ticket is None:
                raise NotFound(f"No hand-off ticket {reference}.")
            ticket.status, ticket.closed_at = "closed", self.now()
            return self._handoff_view(ticket)

    def add_feedback(
        self,
        session_id: str,
        turn_id: str,
        rating: int,
        *,
        user_id: str | None = None,
        text: str = "",
        predicted_intent: str | None = None,
        correct_intent: str | None = None,
        comment: str | None = None,
    ) -> int:
        """Store a rating (+1 / -1) of one turn, with an optional corrected intent; returns its id.

        ``text`` and ``comment`` must already be redacted by the caller.
        """
        if rating not in (1, -1):
            raise BankError("Feedback rating must be +1 or -1.")
        with self._write() as s:
            row = Feedback(
                session_id=session_id, turn_id=turn_id, user_id=user_id, text=text, predicted_intent=predicted_intent,
                correct_intent=correct_intent, rating=rating, comment=comment, created_at=self.now(),
            )
            s.add(row)
            s.flush()
            return row.id

    def list_feedback(self, limit: int | None = None, *, rating: int | None = None) -> list[FeedbackView]:
        """Stored feedback, oldest first (optionally only one rating)."""
        with self._read() as s:
            stmt = select(Feedback).order_by(Feedback.created_at, Feedback.id)
            if rating is not None:
                stmt = stmt.where(Feedback.rating == rating)
            if limit is not None:
                stmt = stmt.limit(limit)
            return [
                FeedbackView(
                    id=f.id, session_id=f.session_id, turn_id=f.turn_id, user_id=f.user_id, text=f.text,
                    predicted_intent=f.predicted_intent, correct_intent=f.correct_intent, rating=f.rating,
                    comment=f.comment, created_at=f.created_at,
                )
                for f in s.scalars(stmt)
            ]
