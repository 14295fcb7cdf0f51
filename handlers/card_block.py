"""Card_Block: block a debit or credit card — immediate, and not reversible in chat."""

from __future__ import annotations

from typing import Any

from app.bank.errors import BankError
from handlers.base import HandlerContext, Reply, Risk, Slot, SlotError
from handlers.registry import handler


def _card(value: Any, ctx: HandlerContext) -> dict[str, str]:
    ref = str(value).strip().lower()
    cards = ctx.bank.cards(ctx.customer_id)
    matches = [c for c in cards if ref == c.last4 or ref == c.type or (ref.isdigit() and c.last4.endswith(ref[-4:]))]
    if not matches:
        words = [w for w in ("debit", "credit") if w in ref]
        matches = [c for c in cards if c.type in words]
    if len(matches) != 1:
        listing = ", ".join(f"{c.type} card ending {c.last4}" for c in cards)
        raise SlotError(f"I couldn't tell which card you mean. Your cards: {listing}.")
    card = matches[0]
    return {"last4": card.last4, "type": card.type, "status": card.status}


@handler(
    "Card_Block",
    slots=(
        Slot("card", prompt="Which card should I block — debit or credit (or the last 4 digits)?",
             entity=("card_last4", "card_type"), free_text=True, validator=_card),
    ),
    requires_auth=True,
    risk=Risk.HIGH,
    description="block a lost or stolen card",
    topic="blocking a lost or stolen debit or credit card",
    confirm=lambda ctx: (
        f"Blocking your {ctx.slots['card']['type']} card ending {ctx.slots['card']['last4']} takes effect "
        "immediately and cannot be undone in chat. Block it now? (yes/no)"
    ),
)
def card_block(ctx: HandlerContext) -> Reply:
    """Block the chosen card at once."""
    card = ctx.slots["card"]
    try:
        result = ctx.bank.block_card(ctx.customer_id, card["last4"])
    except BankError as exc:
        return Reply(f"I couldn't block that card: {exc}", outcome="failed")
    if getattr(result, "already_blocked", False):
        return Reply(f"Your {card['type']} card ending {card['last4']} was already blocked.",
                     data={"card_last4": card["last4"]})
    return Reply(
        f"Your {card['type']} card ending {card['last4']} is now blocked. No new transactions will go through. "
        "To get a replacement or unblock it, visit a branch or call customer care.",
        data={"card_last4": card["last4"]},
    )
