"""Credit-card bills and paying them from the customer's own account (full, minimum or an amount).

A payment is a transfer (:meth:`Transfers.move`: exactly once per idempotency key, same locks,
limits and ledger) from the customer's account to the bank's card-receivables account; in the same
transaction the bill's paid amount goes up and a :class:`~app.bank.models.CardPayment` links the two.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.bank.cards import resolve_card_in
from app.bank.db import Database
from app.bank.errors import BankError, InvalidAmount, NotFound
from app.bank.models import CARD_PAYMENTS_ACCOUNT_NUMBER, Card, CardBill, CardPayment, Transfer
from app.bank.transfers import AmountLike, Destination, Transfers
from app.bank.views import CardBillView, CardPaymentView
from app.core.money import format_money

KINDS = ("full", "minimum", "amount")


def bill_view(b: CardBill, card: Card) -> CardBillView:
    """The detached view of a card bill."""
    return CardBillView(
        card_last4=card.last4, card_label=f"{card.network} credit card ending {card.last4}",
        statement_date=b.statement_date, due_date=b.due_date, total_due=b.total_due, minimum_due=b.minimum_due,
        paid=b.paid,
    )


def _credit_card(s: Session, customer_id: int, card_ref: str | None) -> Card:
    """The customer's credit card meant by ``card_ref`` (the only one when it says nothing)."""
    ref = card_ref or "credit"
    card = resolve_card_in(s, customer_id, ref if any(ch.isdigit() for ch in ref) else "credit")
    if card.type != "credit":
        raise NotFound(f"The card ending {card.last4} is a debit card; it has no bill to pay.")
    return card


def _latest_bill(s: Session, card: Card, *, lock: bool = False) -> CardBill:
    stmt = select(CardBill).where(CardBill.card_id == card.id).order_by(CardBill.statement_date.desc()).limit(1)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    bill = s.scalars(stmt).first()
    if bill is None:
        raise NotFound(f"Your credit card ending {card.last4} has no bill yet.")
    return bill


class CardBills:
    """Credit-card statements and their payment."""

    def __init__(self, db: Database, transfers: Transfers) -> None:
        self.db = db
        self.transfers = transfers

    def card_bill(self, customer_id: int, card_ref: str | None = None) -> CardBillView:
        """The latest bill of the customer's credit card."""
        with self.db.read() as s:
            card = _credit_card(s, customer_id, card_ref)
            return bill_view(_latest_bill(s, card), card)

    def amount_for(self, bill: CardBillView, kind: str, amount: AmountLike | None = None) -> Decimal:
        """What a payment of ``kind`` pays on ``bill``: the outstanding, the minimum still due, or ``amount``."""
        if kind == "full":
            value = bill.outstanding
        elif kind == "minimum":
            value = bill.minimum_outstanding
        elif kind == "amount":
            value = self.transfers.clean_amount(amount if amount is not None else "", "INR")
        else:
            raise BankError("I can pay the full amount due, the minimum due, or an amount you choose.")
        if bill.outstanding <= 0:
            raise BankError(f"Nothing is due on your credit card ending {bill.card_last4}.")
        if value <= 0:
            raise BankError(f"The minimum due on your card ending {bill.card_last4} is already paid; "
                            f"{format_money(bill.outstanding)} is still outstanding.")
        if value > bill.outstanding:
            raise InvalidAmount(f"That is more than the {format_money(bill.outstanding)} outstanding on your card.")
        return value

    def pay(self, customer_id: int, card_ref: str | None, kind: str, amount: AmountLike, from_ref: str | None,
            idempotency_key: str, *, session_id: str | None = None, channel: str = "chat") -> CardPaymentView:
        """Pay ``amount`` (the ``kind`` the customer chose) towards the card's latest bill, exactly once."""
        if kind not in KINDS:
            raise BankError("I can pay the full amount due, the minimum due, or an amount you choose.")
        with self.db.read() as s:
            card = _credit_card(s, customer_id, card_ref)
            card_id, last4 = card.id, card.last4

        def record(s: Session, transfer: Transfer) -> None:
            card_row = s.get(Card, card_id)
            bill = _latest_bill(s, card_row, lock=True)
            if transfer.amount > bill.total_due - bill.paid:  # re-checked under the lock
                raise InvalidAmount(f"That is more than the {format_money(bill.total_due - bill.paid)} outstanding on your card.")
            bill.paid = bill.paid + transfer.amount
            s.add(CardPayment(transfer_id=transfer.id, bill_id=bill.id, kind=kind))
            s.flush()

        destination = Destination(internal_number=CARD_PAYMENTS_ACCOUNT_NUMBER,
                                  label=f"your credit card ending {last4}", masked=f"XXXX{last4}")
        view = self.transfers.move(customer_id, from_ref, destination, amount, idempotency_key,
                                   session_id=session_id, channel=channel, after=record)
        return CardPaymentView(transfer=view, bill=self.card_bill(customer_id, last4), kind=kind)
