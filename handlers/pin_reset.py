"""PIN_Reset: reset or change a card PIN through an OTP and a secure SMS link — no PIN is ever typed in chat."""

from __future__ import annotations

import re
from typing import Any

from app.bank.errors import BankError
from app.bank.facts import load_facts
from handlers._common import card_slot, words
from handlers.base import HandlerContext, Reply, Risk, Slot, SlotError
from handlers.registry import handler

# "change my pin to 4321", "new pin 1234": a PIN typed in chat (never used, never echoed).
_TYPED_PIN = re.compile(r"\bpin\b\D{0,20}\b\d{4,6}\b")


def _card(value: Any, ctx: HandlerContext) -> dict[str, Any]:
    if _TYPED_PIN.search(words(ctx)):
        raise SlotError(ctx.say("service.pin.never_type"))
    card = card_slot(value, ctx)
    if card["status"] == "blocked":
        raise SlotError(ctx.say("service.pin.blocked", card=card["label"]))
    return card


@handler(
    "PIN_Reset",
    slots=(
        Slot("card", prompt="Which card's PIN should I reset — debit or credit (or the last 4 digits)?",
             prompt_key="service.pin.prompt", entity=("card_last4", "card_type", "card_network"), free_text=True, validator=_card,
             kind="card"),
    ),
    requires_auth=True,
    risk=Risk.HIGH,
    description="reset your card PIN",
    confirm=lambda ctx: ctx.say("service.pin.confirm", card=ctx.slots["card"]["label"]),
    needs_otp=lambda ctx: True,
    topic="card PIN reset forgot",
)
def pin_reset(ctx: HandlerContext) -> Reply:
    """After the OTP, SMS the secure PIN-set link (a retried confirmation sends no second link)."""
    card = ctx.slots["card"]
    try:
        req = ctx.bank.send_pin_reset_link(ctx.customer_id, card["last4"], ctx.idempotency_key)
    except BankError as exc:
        return Reply(ctx.say("service.common.failed", reason=exc), outcome="failed")
    data = {"request_reference": req.reference, "replayed": req.replayed}
    if req.replayed:
        return Reply(ctx.say("service.pin.replayed", reference=req.reference), data=data)
    customer = ctx.bank.get_customer_by_id(ctx.customer_id)
    minutes = load_facts()["service_requests"]["pin_link_validity_minutes"]
    return Reply(ctx.say("service.pin.done", phone=customer.phone_masked if customer else "", card=card["label"],
                         minutes=minutes, reference=req.reference), data=data)
