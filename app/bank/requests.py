"""Service requests and cases the bank carries out outside the chat: cheque books, disputes and
wrong-transfer recalls, account closures, contact-detail changes and PIN resets.

Each is one :class:`~app.bank.models.ServiceRequest` row with a reference (``CHQ…``, ``DSP…``) and,
where the bank promises one, a due date from ``data/bank_facts.yaml`` (``service_requests``). Every
call takes an idempotency key: a retried confirmation returns the request it already filed. Asking
again for something still open (a second cheque book for the same account, a second closure)
returns the open request instead of filing a duplicate.
"""

from __future__ import annotations

import json
import re
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.bank.accounts import customer_row, resolve_account_in
from app.bank.cards import resolve_card_in
from app.bank.clock import new_reference
from app.bank.db import Database, with_retry
from app.bank.errors import AccountUnavailable, BankError, IdempotencyConflict, NotFound
from app.bank.facts import load_facts
from app.bank.models import Customer, ServiceRequest, Transfer
from app.bank.otp import SmsOutbox
from app.bank.text import mask_phone
from app.bank.views import ServiceRequestView

PREFIX = {"cheque_book": "CHQ", "dispute": "DSP", "transfer_recall": "RCL", "account_closure": "CLS",
          "contact_update": "CNT", "pin_reset": "PIN"}
OPEN = ("open", "in_progress")

EMAIL = re.compile(r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}$")
# An Indian mobile number: 10 digits starting 6-9, optionally after +91 / 91 / 0.
MOBILE = re.compile(r"^(?:\+?91|0)?([6-9]\d{9})$")
PIN_LINK_BASE = "https://sahayakbank.example/pin/set/"


def clean_email(text: str) -> str:
    """The e-mail address in ``text`` (lower-cased), or :class:`BankError` when it is not one."""
    value = (text or "").strip().strip(".,;").lower()
    if not EMAIL.fullmatch(value) or ".." in value:
        raise BankError(f"'{text.strip()}' doesn't look like an e-mail address (for example name@example.com).")
    return value


def clean_mobile(text: str) -> str:
    """The Indian mobile number in ``text`` as ``+91XXXXXXXXXX``, or :class:`BankError`."""
    digits = re.sub(r"[\s().-]", "", text or "")
    m = MOBILE.fullmatch(digits)
    if not m:
        raise BankError("That isn't a valid Indian mobile number: it should have 10 digits and start with 6, 7, 8 or 9.")
    return "+91" + m.group(1)


def request_view(r: ServiceRequest, *, replayed: bool = False, existing: bool = False) -> ServiceRequestView:
    """The detached view of a service request."""
    return ServiceRequestView(reference=r.reference, kind=r.kind, status=r.status, created_at=r.created_at,
                              due_by=r.due_by, details=json.loads(r.details or "{}"), replayed=replayed,
                              existing=existing)


def _rules() -> dict[str, Any]:
    return load_facts()["service_requests"]


class ServiceRequests:
    """File, find and list service requests; change contact details; send the PIN-set link."""

    def __init__(self, db: Database, outbox: SmsOutbox | None = None) -> None:
        self.db = db
        self.outbox = outbox or SmsOutbox(db)

    # ------------------------------------------------------------------ plumbing
    def _file(self, customer_id: int, kind: str, key: str, build: Any) -> ServiceRequestView:
        """Run ``build(session, customer, now)`` → (request, view) once per ``key``, in one transaction."""
        key = (key or "").strip()
        if not key or len(key) > 128:
            raise BankError("This request is missing a valid request id; please start it again.")

        def replay(s: Session) -> ServiceRequestView | None:
            found = s.scalars(select(ServiceRequest).where(ServiceRequest.idempotency_key == key)).first()
            if found is None:
                return None
            if found.customer_id != customer_id or found.kind != kind:
                raise IdempotencyConflict("This request id was already used; please start the request again.")
            return request_view(found, replayed=True)

        def attempt() -> ServiceRequestView:
            try:
                with self.db.write() as s:
                    customer = customer_row(s, customer_id, lock=True)
                    done = replay(s)
                    if done is not None:
                        return done
                    return build(s, customer, self.db.now())
            except IntegrityError:
                with self.db.read() as s:
                    done = replay(s)
                    if done is None:
                        raise
                    return done

        return with_retry(attempt)

    def _new(self, s: Session, customer_id: int, kind: str, key: str, now: datetime, *, days: int | None,
             details: dict[str, Any], status: str = "open", account_id: int | None = None,
             transfer_id: int | None = None) -> ServiceRequestView:
        row = ServiceRequest(
            reference=new_reference(PREFIX[kind], now), idempotency_key=key, customer_id=customer_id, kind=kind,
            status=status, account_id=account_id, transfer_id=transfer_id, details=json.dumps(details),
            created_at=now, due_by=now + timedelta(days=days) if days is not None else None,
        )
        s.add(row)
        s.flush()
        return request_view(row)

    @staticmethod
    def _open_one(s: Session, customer_id: int, kind: str, account_id: int | None) -> ServiceRequest | None:
        return s.scalars(select(ServiceRequest).where(
            ServiceRequest.customer_id == customer_id, ServiceRequest.kind == kind,
            ServiceRequest.account_id == account_id, ServiceRequest.status.in_(OPEN),
        )).first()

    # ------------------------------------------------------------------ requests
    def cheque_book(self, customer_id: int, account_ref: str | None, key: str) -> ServiceRequestView:
        """Order a cheque book for the account, delivered by post (an open order is returned, not doubled)."""
        rules = _rules()

        def build(s: Session, customer: Customer, now: datetime) -> ServiceRequestView:
            account = resolve_account_in(s, customer_id, account_ref)
            if account.status != "active":
                raise AccountUnavailable(f"Your {account.type} account {account.masked} is {account.status}.")
            found = self._open_one(s, customer_id, "cheque_book", account.id)
            if found is not None:
                return request_view(found, existing=True)
            return self._new(s, customer_id, "cheque_book", key, now, days=int(rules["cheque_book_delivery_days"]),
                             account_id=account.id, details={"account": account.masked, "account_type": account.type,
                                                              "leaves": int(rules["cheque_book_leaves"])})

        return self._file(customer_id, "cheque_book", key, build)

    def dispute(self, customer_id: int, key: str, *, transfer_reference: str | None = None,
                description: str = "", recall: bool = False) -> ServiceRequestView:
        """Open a case: a disputed transaction, or (``recall``) the recall of a transfer sent to the wrong
        person. ``transfer_reference`` names one of the customer's transfers (default: the latest)."""
        rules = _rules()
        kind = "transfer_recall" if recall else "dispute"

        def build(s: Session, customer: Customer, now: datetime) -> ServiceRequestView:
            transfer = self._transfer(s, customer_id, transfer_reference)
            if recall and (transfer is None or transfer.status == "failed"):
                raise NotFound("I couldn't find a completed transfer to recall. Please tell me its reference (TXN…).")
            if transfer is not None and transfer.status == "failed" and not recall:
                days = int(rules["failed_transfer_dispute_days"])
            elif recall:
                days = int(rules["wrong_transfer_recall_days"])
            else:
                days = int(rules["card_dispute_resolution_days"])
            details: dict[str, Any] = {"description": description[:500]}
            if transfer is not None:
                details.update(transfer_reference=transfer.reference, amount=str(transfer.amount),
                               payee=transfer.beneficiary.name if transfer.beneficiary else "own account",
                               transfer_status=transfer.status)
            return self._new(s, customer_id, kind, key, now, days=days, details=details,
                             transfer_id=transfer.id if transfer else None)

        return self._file(customer_id, kind, key, build)

    @staticmethod
    def _transfer(s: Session, customer_id: int, reference: str | None) -> Transfer | None:
        stmt = select(Transfer).where(Transfer.created_by == customer_id)
        if reference:
            found = s.scalars(stmt.where(Transfer.reference == reference.strip().upper())).first()
            if found is None:
                raise NotFound(f"I couldn't find a transfer with reference {reference} in your account.")
            return found
        return s.scalars(stmt.order_by(Transfer.created_at.desc(), Transfer.id.desc())).first()

    def close_account(self, customer_id: int, account_ref: str | None, key: str, reason: str = "") -> ServiceRequestView:
        """Ask the home branch to close the account (not instant: the branch pays out the balance and
        collects unused cheques and cards); an open closure request is returned, not doubled."""
        rules = _rules()

        def build(s: Session, customer: Customer, now: datetime) -> ServiceRequestView:
            account = resolve_account_in(s, customer_id, account_ref)
            if account.status == "closed":
                raise AccountUnavailable(f"Your {account.type} account {account.masked} is already closed.")
            found = self._open_one(s, customer_id, "account_closure", account.id)
            if found is not None:
                return request_view(found, existing=True)
            return self._new(s, customer_id, "account_closure", key, now, days=int(rules["account_closure_days"]),
                             account_id=account.id,
                             details={"account": account.masked, "account_type": account.type,
                                      "balance": str(account.balance), "reason": reason[:200],
                                      "branch": account.branch.name if account.branch else ""})

        return self._file(customer_id, "account_closure", key, build)

    def update_contact(self, customer_id: int, field: str, value: str, key: str) -> ServiceRequestView:
        """Change the registered e-mail or mobile number now (after the OTP the dialogue asked for) and
        notify the old number by SMS, as banks must for a change of contact details."""
        if field not in ("email", "phone"):
            raise BankError("I can update your e-mail address or your mobile number.")
        clean = clean_email(value) if field == "email" else clean_mobile(value)
        care = load_facts()["bank"]["customer_care"]
        notices: list[tuple[str, str]] = []

        def build(s: Session, customer: Customer, now: datetime) -> ServiceRequestView:
            old = customer.email if field == "email" else customer.phone
            if old == clean:
                raise BankError(f"That is already your registered {'e-mail address' if field == 'email' else 'mobile number'}.")
            setattr(customer, field, clean)
            shown = clean if field == "email" else mask_phone(clean)
            view = self._new(s, customer_id, "contact_update", key, now, days=None, status="completed",
                             details={"field": field, "new": shown})
            if customer.phone or old:
                where = mask_phone(old if field == "phone" and old else customer.phone)
                notices.append((where, f"Sahayak Bank: your registered {'e-mail' if field == 'email' else 'mobile number'} "
                                       f"was changed to {shown} (ref {view.reference}). Not you? Call {care} now."))
            return view

        view = self._file(customer_id, "contact_update", key, build)
        for phone, text in notices:  # after the commit, as OTP SMS are
            self.outbox.send(phone, text)
        return view

    def pin_reset(self, customer_id: int, card_ref: str | None, key: str) -> ServiceRequestView:
        """Send the secure PIN-set link for the card by SMS to the registered mobile (the PIN is never
        typed in chat); the link is valid for ``pin_link_validity_minutes``."""
        rules = _rules()
        minutes = int(rules["pin_link_validity_minutes"])
        sent: list[tuple[str, str]] = []

        def build(s: Session, customer: Customer, now: datetime) -> ServiceRequestView:
            card = resolve_card_in(s, customer_id, card_ref)
            if card.status == "blocked":
                raise AccountUnavailable(f"Your {card.type} card ending {card.last4} is blocked, so its PIN can't be set. "
                                         "A replacement card comes with a new PIN.")
            view = self._new(s, customer_id, "pin_reset", key, now, days=None, status="completed",
                             details={"card": card.last4, "card_type": card.type,
                                      "link_expires": (now + timedelta(minutes=minutes)).isoformat()})
            link = PIN_LINK_BASE + secrets.token_urlsafe(18)
            sent.append((mask_phone(customer.phone) if customer.phone else "your registered mobile",
                         f"Sahayak Bank: set a new PIN for your {card.type} card ending {card.last4} at {link} "
                         f"(valid {minutes} min, ref {view.reference}). Never share your PIN."))
            return view

        view = self._file(customer_id, "pin_reset", key, build)
        for phone, text in sent:  # only a newly filed request sends a link; a replay does not send another
            self.outbox.send(phone, text)
        return view

    def requests(self, customer_id: int, kind: str | None = None) -> list[ServiceRequestView]:
        """The customer's service requests, newest first (only ``kind`` when given)."""
        with self.db.read() as s:
            stmt = select(ServiceRequest).where(ServiceRequest.customer_id == customer_id)
            if kind:
                stmt = stmt.where(ServiceRequest.kind == kind)
            rows = s.scalars(stmt.order_by(ServiceRequest.created_at.desc(), ServiceRequest.id.desc())).all()
            return [request_view(r) for r in rows]
