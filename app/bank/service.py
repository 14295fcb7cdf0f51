"""BankService: the only way the assistant reads or moves money — a thin facade over the parts.

Every customer-facing method takes the authenticated ``customer_id`` and only ever looks
at that customer's rows, so a conversation can never see or move someone else's money.
Methods return detached views (:mod:`app.bank.views`) and raise
:class:`~app.bank.errors.BankError` subclasses whose messages can be shown to the customer.

The work is done by one part per concern, all sharing one :class:`~app.bank.db.Database`
(URL, settings, clock): :mod:`~app.bank.accounts` (customers, log-in, accounts, payees),
:mod:`~app.bank.transfers` (exactly-once transfers and limits), :mod:`~app.bank.otp` (OTPs and
the SMS outbox), :mod:`~app.bank.cards`, :mod:`~app.bank.branches` and :mod:`~app.bank.products`
(loan products, account applications), :mod:`~app.bank.deliveries` (card dispatches),
:mod:`~app.bank.cardbills` (credit-card bills and their payment), :mod:`~app.bank.statements`
(statement files behind signed links) and :mod:`~app.bank.requests` (service requests and cases).
Dialogue sessions, hand-offs and feedback are not the
bank's: they live in :mod:`app.conversation.sessions` and :mod:`app.conversation.support`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Callable

from app.bank.accounts import Accounts
from app.bank.branches import Branches
from app.bank.cardbills import CardBills
from app.bank.cards import Cards
from app.bank.db import Database
from app.bank.deliveries import Deliveries
from app.bank.logins import Logins
from app.bank.otp import Otps
from app.bank.products import Products
from app.bank.requests import ServiceRequests
from app.bank.statements import Statements
from app.bank.transfers import AmountLike, Transfers
from app.bank.views import (
    AccountView,
    ApplicationView,
    BeneficiaryView,
    BranchView,
    CardBillView,
    CardDeliveryView,
    CardPaymentView,
    CardView,
    CustomerView,
    LoanProductView,
    OtpIssued,
    OtpResult,
    ServiceRequestView,
    StatementView,
    TransferView,
)
from app.core.settings import Settings


class BankService:
    """The demo bank's operations, each in its own database transaction.

    ``url`` defaults to ``settings.db_url``; ``settings`` to :func:`get_settings`;
    ``clock`` (returns aware UTC "now") lets tests move time for OTP expiry and day limits.
    The schema is created on construction (idempotent); seed data comes from
    :func:`app.bank.seed.seed`. Each method hands over to the part that owns it; ``db`` is the
    shared :class:`~app.bank.db.Database` (the conversation's stores are built on it too).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        settings: Settings | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.db = Database(url, settings=settings, clock=clock)
        self.settings = self.db.settings
        self.url = self.db.url
        self._accounts = Accounts(self.db)
        self._transfers = Transfers(self.db)
        self._otps = Otps(self.db)
        self._cards = Cards(self.db)
        self._branches = Branches(self.db)
        self._products = Products(self.db)
        self._deliveries = Deliveries(self.db)
        self._bills = CardBills(self.db, self._transfers)
        self._statements = Statements(self.db)
        self._requests = ServiceRequests(self.db, self._otps.outbox)
        self.logins = Logins(self.db)  # web sign-in sessions and throttling

    def now(self) -> datetime:
        """The service's notion of now (aware UTC)."""
        return self.db.now()

    # ------------------------------------------------------------------ customers and accounts
    def set_password(self, username: str, password: str) -> None:
        """See :meth:`Accounts.set_password` (at least 10 characters, never a published demo password)."""
        self._accounts.set_password(username, password)

    def authenticate(self, username: str, password: str) -> CustomerView | None:
        """See :meth:`Accounts.authenticate` (constant-time; unknown users cost the same)."""
        return self._accounts.authenticate(username, password)

    def get_customer(self, username: str) -> CustomerView | None:
        """The customer or staff member called ``username`` (case-insensitive), else ``None``."""
        return self._accounts.get_customer(username)

    def get_customer_by_id(self, customer_id: int) -> CustomerView | None:
        """The person with this id, else ``None``."""
        return self._accounts.get_customer_by_id(customer_id)

    def accounts(self, customer_id: int) -> list[AccountView]:
        """The customer's accounts, savings first."""
        return self._accounts.accounts(customer_id)

    def resolve_account(self, customer_id: int, ref: str | None = None) -> AccountView:
        """See :meth:`Accounts.resolve_account` ("savings" / "current" / last 4 digits / number)."""
        return self._accounts.resolve_account(customer_id, ref)

    def balance(self, customer_id: int, ref: str | None = None) -> AccountView:
        """Alias of :meth:`resolve_account`: the account view carries the balance."""
        return self._accounts.resolve_account(customer_id, ref)

    def beneficiaries(self, customer_id: int) -> list[BeneficiaryView]:
        """The customer's saved payees, by name."""
        return self._accounts.beneficiaries(customer_id)

    def resolve_beneficiary(self, customer_id: int, name: str) -> BeneficiaryView:
        """See :meth:`Accounts.resolve_beneficiary` (name, nickname, prefix, close spelling)."""
        return self._accounts.resolve_beneficiary(customer_id, name)

    # ------------------------------------------------------------------ transfers
    def daily_total(self, customer_id: int) -> Decimal:
        """Sum of the customer's completed transfers today (IST calendar day)."""
        return self._transfers.daily_total(customer_id)

    def daily_remaining(self, customer_id: int) -> Decimal:
        """How much more the customer may transfer today."""
        return self._transfers.daily_remaining(customer_id)

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
        """Move ``amount`` to a saved payee, exactly once per key: see :meth:`Transfers.transfer`."""
        return self._transfers.transfer(customer_id, from_ref, beneficiary_id, amount, idempotency_key,
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
        """Move ``amount`` between the customer's own accounts, exactly once per key: see :meth:`Transfers.own_transfer`."""
        return self._transfers.own_transfer(customer_id, from_ref, to_ref, amount, idempotency_key,
                                            session_id=session_id, channel=channel)

    def recent_transfers(self, customer_id: int, limit: int = 5, *, payee_id: int | None = None) -> list[TransferView]:
        """The customer's latest transfers (completed, pending and failed), newest first; to one payee if given."""
        return self._transfers.recent_transfers(customer_id, limit, payee_id=payee_id)

    def ledger(self, transfer_reference: str) -> list[dict[str, Any]]:
        """The ledger entries of one transfer (for audits and tests): account, amount, balance_after."""
        return self._transfers.ledger(transfer_reference)

    # ------------------------------------------------------------------ OTP
    def issue_otp(self, customer_id: int, purpose: str, reference: str, *, description: str | None = None) -> OtpIssued:
        """Send a 6-digit OTP by SMS: see :meth:`Otps.issue_otp`. Raises :class:`OtpLocked` during a lockout."""
        return self._otps.issue_otp(customer_id, purpose, reference, description=description)

    def verify_otp(self, customer_id: int, challenge_id: str, code: str, *, reference: str | None = None) -> OtpResult:
        """Check an OTP (attempts counted, lockout after too many): see :meth:`Otps.verify_otp`."""
        return self._otps.verify_otp(customer_id, challenge_id, code, reference=reference)

    # ------------------------------------------------------------------ cards
    def cards(self, customer_id: int) -> list[CardView]:
        """The customer's cards, debit first."""
        return self._cards.cards(customer_id)

    def resolve_card(self, customer_id: int, card_ref: str | None) -> CardView:
        """One of the customer's cards from last 4 digits or "debit"/"credit"."""
        return self._cards.resolve_card(customer_id, card_ref)

    def block_card(self, customer_id: int, card_ref: str | None, *, reason: str = "blocked by customer in chat") -> CardView:
        """Block a card immediately (no unblock in chat): see :meth:`Cards.block_card`."""
        return self._cards.block_card(customer_id, card_ref, reason=reason)

    # ------------------------------------------------------------------ branches
    def branches_near(self, query: str, limit: int = 3, *, kind: str | None = None) -> list[BranchView]:
        """Branches/ATMs near a pincode or place: see :meth:`Branches.branches_near`."""
        return self._branches.branches_near(query, limit, kind=kind)

    # ------------------------------------------------------------------ products and applications
    def loan_products(self) -> list[LoanProductView]:
        """Every loan product (numbers from data/bank_facts.yaml via the seed)."""
        return self._products.loan_products()

    def loan_product(self, kind: str) -> LoanProductView:
        """The loan product of one kind (home, car, personal, education, gold)."""
        return self._products.loan_product(kind)

    def open_account(self, customer_id: int, account_type: str) -> ApplicationView:
        """Submit (or find the pending) application for a savings or current account."""
        return self._products.open_account(customer_id, account_type)

    # ------------------------------------------------------------------ card deliveries and bills
    def card_deliveries(self, customer_id: int, card_ref: str | None = None) -> list[CardDeliveryView]:
        """The latest dispatch of each card (cards on their way first): see :meth:`Deliveries.card_deliveries`."""
        return self._deliveries.card_deliveries(customer_id, card_ref)

    def card_bill(self, customer_id: int, card_ref: str | None = None) -> CardBillView:
        """The latest bill of the customer's credit card."""
        return self._bills.card_bill(customer_id, card_ref)

    def card_bill_amount(self, bill: CardBillView, kind: str, amount: AmountLike | None = None) -> Decimal:
        """What paying ``kind`` (full | minimum | amount) pays on ``bill``; raises when nothing fits."""
        return self._bills.amount_for(bill, kind, amount)

    def pay_card_bill(self, customer_id: int, card_ref: str | None, kind: str, amount: AmountLike, from_ref: str | None,
                      idempotency_key: str, *, session_id: str | None = None, channel: str = "chat") -> CardPaymentView:
        """Pay the credit-card bill from the customer's account, exactly once: see :meth:`CardBills.pay`."""
        return self._bills.pay(customer_id, card_ref, kind, amount, from_ref, idempotency_key,
                               session_id=session_id, channel=channel)

    # ------------------------------------------------------------------ statements
    def create_statement(self, customer_id: int, account_ref: str | None, period_from: str, period_to: str) -> StatementView:
        """Write a CSV statement for the period: see :meth:`Statements.create`."""
        return self._statements.create(customer_id, account_ref, period_from, period_to)

    def statement_link(self, statement: StatementView) -> str:
        """The signed, expiring link (relative URL) to a statement."""
        return self._statements.link(statement)

    def check_statement_link(self, token: str, expires: str | None, sig: str | None) -> bool:
        """True when a statement link's signature is good and it has not expired."""
        return self._statements.check_link(token, expires, sig)

    def open_statement(self, token: str, customer_id: int) -> tuple[bytes, str]:
        """(content, file name) of the customer's own unexpired statement, else :class:`NotFound`."""
        return self._statements.open(token, customer_id)

    # ------------------------------------------------------------------ service requests
    def request_cheque_book(self, customer_id: int, account_ref: str | None, idempotency_key: str) -> ServiceRequestView:
        """Order a cheque book (an open order is returned, not doubled)."""
        return self._requests.cheque_book(customer_id, account_ref, idempotency_key)

    def raise_dispute(self, customer_id: int, idempotency_key: str, *, transfer_reference: str | None = None,
                      description: str = "", recall: bool = False) -> ServiceRequestView:
        """Open a dispute or a wrong-transfer recall case with an SLA: see :meth:`ServiceRequests.dispute`."""
        return self._requests.dispute(customer_id, idempotency_key, transfer_reference=transfer_reference,
                                      description=description, recall=recall)

    def request_account_closure(self, customer_id: int, account_ref: str | None, idempotency_key: str,
                                reason: str = "") -> ServiceRequestView:
        """Ask the branch to close an account (not instant)."""
        return self._requests.close_account(customer_id, account_ref, idempotency_key, reason)

    def update_contact(self, customer_id: int, field: str, value: str, idempotency_key: str) -> ServiceRequestView:
        """Change the registered e-mail or mobile (``field``: email | phone) and notify by SMS."""
        return self._requests.update_contact(customer_id, field, value, idempotency_key)

    def send_pin_reset_link(self, customer_id: int, card_ref: str | None, idempotency_key: str) -> ServiceRequestView:
        """SMS the secure PIN-set link for a card (no PIN ever passes through the chat)."""
        return self._requests.pin_reset(customer_id, card_ref, idempotency_key)

    def service_requests(self, customer_id: int, kind: str | None = None) -> list[ServiceRequestView]:
        """The customer's service requests, newest first."""
        return self._requests.requests(customer_id, kind)
