"""Close_Account: a request to close an account — registered with a reference, completed by the
branch (never instant), confirmed and OTP-verified because it cannot be undone."""

from __future__ import annotations

from app.bank.errors import BankError
from app.bank.facts import load_facts
from app.core.money import format_money
from handlers._common import account_slot, day
from handlers.base import HandlerContext, Reply, Risk, Slot
from handlers.registry import handler


def _confirm(ctx: HandlerContext) -> str:
    acc = ctx.slots["account"]
    return ctx.say("service.close.confirm", type=acc["type"], masked=acc["masked"], balance=format_money(acc["balance"]),
                   days=load_facts()["service_requests"]["account_closure_days"])


@handler(
    "Close_Account",
    slots=(
        Slot("account", prompt="Which account would you like to close — savings or current?",
             prompt_key="service.close.account_prompt", entity="account_ref", free_text=True, validator=account_slot,
             kind="account"),
    ),
    requires_auth=True,
    risk=Risk.HIGH,
    description="request to close an account",
    confirm=_confirm,
    needs_otp=lambda ctx: True,
    topic="close account closure",
)
def close_account(ctx: HandlerContext) -> Reply:
    """Register the closure request once (an open one is reported, not doubled)."""
    acc = ctx.slots["account"]
    try:
        req = ctx.bank.request_account_closure(ctx.customer_id, acc["number"], ctx.idempotency_key)
    except BankError as exc:
        return Reply(ctx.say("service.common.failed", reason=exc), outcome="failed")
    key = "service.close.existing" if req.existing else "service.close.done"
    return Reply(ctx.say(key, type=acc["type"], masked=acc["masked"], reference=req.reference, due=day(req.due_by)),
                 data={"request_reference": req.reference})
