"""Card_Delivery_Status: when the customer's new card was dispatched, by which courier, and its reference."""

from __future__ import annotations

from app.bank.errors import BankError, NotFound
from handlers._common import card_slot, day
from handlers.base import HandlerContext, Reply, Risk, Slot
from handlers.registry import handler


@handler(
    "Card_Delivery_Status",
    slots=(
        Slot("card", prompt="Which card — debit or credit?", entity=("card_last4", "card_type"), validator=card_slot,
             required=False, kind="card"),
    ),
    requires_auth=True,
    risk=Risk.LOW,
    description="track the delivery of your card",
    topic="card delivery courier dispatch",
)
def card_delivery_status(ctx: HandlerContext) -> Reply:
    """Say where the customer's latest card(s) are: on the way first, else the last one delivered."""
    card = ctx.slots.get("card")
    try:
        deliveries = ctx.bank.card_deliveries(ctx.customer_id, card["last4"] if card else None)
    except NotFound:
        return Reply(ctx.say("service.card_delivery.none"), outcome="failed")
    except BankError as exc:
        return Reply(ctx.say("service.common.failed", reason=exc), outcome="failed")
    on_the_way = [d for d in deliveries if d.status in ("processing", "dispatched", "returned")]
    shown = on_the_way or deliveries[:1]
    lines = []
    now = ctx.bank.now()
    for d in shown:
        fields = dict(card=d.card_label, reason=d.reason, courier=d.courier or "", tracking=d.tracking_ref or "",
                      dispatched=day(d.dispatched_at), expected=day(d.expected_by), delivered=day(d.delivered_at))
        line = ctx.say(f"service.card_delivery.{d.status}", **fields)
        if d.status != "delivered" and d.expected_by is not None and d.expected_by < now:
            line += " " + ctx.say("service.card_delivery.late")
        lines.append(line)
    data = {"deliveries": [d.model_dump(mode="json") for d in shown]}
    return Reply("\n".join(lines), data=data)
