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
    if not matches:  # "my rupay card": the network names it
        matches = [c for c in cards if (c.network or "").lower().replace(" ", "") == ref.replace(" ", "")]
    if len(matches) != 1:
        listing = ", ".join(f"{c.type} card ending {c.last4}" for c in cards)
        raise SlotError(f"I couldn't tell which card you mean. Your cards: {listing}.")
    card = matches[0]
    return {"last4": card.last4, "type": card.type, "status": card.status}


@handler(
    "Card_Block",
    slots=(
        Slot("card", prompt="Which card should I block — debit or credit (or the last 4 digits)?",
             entity=("card_last4", "card_type", "card_network"), free_text=True, validator=_card),
    ),
    requires_auth=True,
    risk=Risk.HIGH,
    description="block a lost or stolen card",
    topic="blocking a lost or stolen debit or credit card",
    confirm=lambda ctx: ctx.say("card_block.confirm", type=ctx.slots["card"]["type"], last4=ctx.slots["card"]["last4"]),
)
def card_block(ctx: HandlerContext) -> Reply:
    """Block the chosen card at once."""
    card = ctx.slots["card"]
    try:
        result = ctx.bank.block_card(ctx.customer_id, card["last4"])
    except BankError as exc:
        return Reply(ctx.say("card_block.failed", reason=exc), outcome="failed")
    if getattr(result, "already_blocked", False):
        return Reply(ctx.say("card_block.already", type=card["type"], last4=card["last4"]),
                     data={"card_last4": card["last4"]})
    return Reply(ctx.say("card_block.done", type=card["type"], last4=card["last4"]), data={"card_last4": card["last4"]})
