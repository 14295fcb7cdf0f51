"""Debit and credit cards: list, resolve and block (there is deliberately no unblock in chat)."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.bank.db import Database, with_retry
from app.bank.errors import Ambiguous, NotFound
from app.bank.models import Card
from app.bank.text import normalise
from app.bank.views import CardView


def card_view(c: Card, already_blocked: bool = False) -> CardView:
    """The detached view of a card row."""
    return CardView(
        id=c.id, last4=c.last4, type=c.type, network=c.network, variant=c.variant, status=c.status,
        blocked_at=c.blocked_at, already_blocked=already_blocked,
    )


_NETWORKS = {"rupay": "rupay", "visa": "visa", "mastercard": "mastercard", "master": "mastercard",
             "amex": "americanexpress", "americanexpress": "americanexpress"}


def resolve_card_in(s: Session, customer_id: int, card_ref: str | None) -> Card:
    """The customer's card row meant by ``card_ref`` (last 4 digits, "debit"/"atm" or "credit")."""
    rows = list(s.scalars(select(Card).where(Card.customer_id == customer_id).order_by(Card.id)))
    if not rows:
        raise NotFound("You don't have any cards with us.")
    listing = ", ".join(f"{c.type} card ending {c.last4}" for c in rows)
    text = normalise(card_ref or "")
    digits = re.sub(r"\D", "", text)
    if len(digits) >= 4:
        matches = [c for c in rows if c.last4 == digits[-4:]]
        if not matches:
            raise NotFound(f"You have no card ending {digits[-4:]}. Your cards: {listing}.")
    elif "debit" in text or "atm" in text:
        matches = [c for c in rows if c.type == "debit"]
    elif "credit" in text:
        matches = [c for c in rows if c.type == "credit"]
    elif network := next((n for n in _NETWORKS if n in text.replace(" ", "")), None):
        # "my rupay card": the network names the card when the customer has one of it.
        matches = [c for c in rows if (c.network or "").lower().replace(" ", "") == _NETWORKS[network]]
    else:
        matches = rows
    if not matches:
        raise NotFound(f"I couldn't find that card. Your cards: {listing}.")
    if len(matches) > 1:
        labels = [f"{c.network} {c.type} card ending {c.last4}" for c in matches]
        raise Ambiguous(f"Which card: {' or '.join(labels)}?", choices=labels)
    return matches[0]


class Cards:
    """The customer's cards."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def cards(self, customer_id: int) -> list[CardView]:
        """The customer's cards, debit first."""
        with self.db.read() as s:
            rows = s.scalars(select(Card).where(Card.customer_id == customer_id).order_by(Card.type.desc(), Card.id)).all()
            return [card_view(c) for c in rows]

    def resolve_card(self, customer_id: int, card_ref: str | None) -> CardView:
        """One of the customer's cards from last 4 digits or "debit"/"credit"."""
        with self.db.read() as s:
            return card_view(resolve_card_in(s, customer_id, card_ref))

    def block_card(self, customer_id: int, card_ref: str | None, *, reason: str = "blocked by customer in chat") -> CardView:
        """Block one of the customer's cards immediately.

        A card that is already blocked comes back with ``already_blocked=True`` (not an
        error). There is deliberately no unblock here: unblocking needs the branch or
        phone banking.
        """

        def run() -> CardView:
            with self.db.write() as s:
                card = resolve_card_in(s, customer_id, card_ref)
                card = s.scalars(
                    select(Card).where(Card.id == card.id).with_for_update().execution_options(populate_existing=True)
                ).one()
                if card.status == "blocked":
                    return card_view(card, already_blocked=True)
                card.status = "blocked"
                card.blocked_at = self.db.now()
                card.blocked_reason = reason[:128]
                s.flush()
                return card_view(card)

        return with_retry(run)
