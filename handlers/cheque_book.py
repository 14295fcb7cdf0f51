"""Cheque_Book_Request: order a cheque book for an account, confirmed, with a reference."""

from __future__ import annotations

from app.bank.errors import BankError
from app.bank.facts import load_facts
from handlers._common import account_slot, day
from handlers.base import HandlerContext, Reply, Risk, Slot
from handlers.registry import handler


def _confirm(ctx: HandlerContext) -> str:
    rules = load_facts()["service_requests"]
    acc = ctx.slots["account"]
    return ctx.say("service.cheque.confirm", leaves=rules["cheque_book_leaves"], type=acc["type"], masked=acc["masked"],
                   days=rules["cheque_book_delivery_days"])


@handler(
    "Cheque_Book_Request",
    slots=(
        Slot("account", prompt="For which account should I order the cheque book — savings or current?",
             prompt_key="service.cheque.account_prompt", entity="account_ref", free_text=True, validator=account_slot,
             kind="account"),
    ),
    requires_auth=True,
    risk=Risk.MEDIUM,
    description="order a cheque book",
    confirm=_confirm,
    topic="cheque book",
)
def cheque_book_request(ctx: HandlerContext) -> Reply:
    """File the order once (an order still on its way is reported, not doubled)."""
    acc = ctx.slots["account"]
    try:
        req = ctx.bank.request_cheque_book(ctx.customer_id, acc["number"], ctx.idempotency_key)
    except BankError as exc:
        return Reply(ctx.say("service.common.failed", reason=exc), outcome="failed")
    key = "service.cheque.existing" if req.existing else "service.cheque.done"
    return Reply(ctx.say(key, type=acc["type"], masked=acc["masked"], reference=req.reference, due=day(req.due_by)),
                 data={"request_reference": req.reference})
