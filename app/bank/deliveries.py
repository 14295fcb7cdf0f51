"""Card deliveries: when a new, replacement or renewed card was dispatched, by which courier, with
which tracking reference, and whether it has arrived."""

from __future__ import annotations

from sqlalchemy import select

from app.bank.cards import resolve_card_in
from app.bank.db import Database
from app.bank.errors import NotFound
from app.bank.models import Card, CardDispatch
from app.bank.views import CardDeliveryView


def delivery_view(d: CardDispatch) -> CardDeliveryView:
    """The detached view of a card dispatch."""
    card = d.card
    return CardDeliveryView(
        card_last4=card.last4, card_type=card.type, card_label=f"{card.network} {card.type} card ending {card.last4}",
        reason=d.reason, status=d.status, requested_at=d.requested_at, dispatched_at=d.dispatched_at,
        courier=d.courier, tracking_ref=d.tracking_ref, expected_by=d.expected_by, delivered_at=d.delivered_at,
    )


class Deliveries:
    """Where the customer's cards are on their way."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def card_deliveries(self, customer_id: int, card_ref: str | None = None) -> list[CardDeliveryView]:
        """The latest dispatch of each of the customer's cards (of one card with ``card_ref``), cards
        still on their way first, then the most recent."""
        with self.db.read() as s:
            stmt = select(CardDispatch).join(Card, Card.id == CardDispatch.card_id).where(Card.customer_id == customer_id)
            if card_ref:
                stmt = stmt.where(Card.id == resolve_card_in(s, customer_id, card_ref).id)
            latest: dict[int, CardDispatch] = {}
            for d in s.scalars(stmt.order_by(CardDispatch.requested_at, CardDispatch.id)):
                latest[d.card_id] = d
            if not latest:
                raise NotFound("I can't find any card sent to you recently.")
            rows = sorted(latest.values(), key=lambda d: (d.status == "delivered", -d.requested_at.timestamp()))
            return [delivery_view(d) for d in rows]
