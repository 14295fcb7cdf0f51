"""Transfer_Status: whether a transfer is completed, pending or failed (the latest, or the latest to a
named payee, or the one with a given reference)."""

from __future__ import annotations

import re
from typing import Any

from app.bank.errors import BankError
from app.core.money import format_money
from handlers._common import day, payee_slot
from handlers.base import HandlerContext, Reply, Risk, Slot, SlotError
from handlers.registry import handler

_REFERENCE = re.compile(r"\bTXN\d{6}[0-9A-F]{8}\b", re.I)


def _payee(value: Any, ctx: HandlerContext) -> dict[str, Any]:
    # Optional slot: an unknown payee is kept as an error to say, never silently dropped (which would
    # report the status of some other transfer).
    try:
        return payee_slot(value, ctx)
    except SlotError as exc:
        return {"error": str(exc)}


def _say(ctx: HandlerContext, t: Any) -> str:
    fields = dict(amount=format_money(t.amount), payee=t.beneficiary, date=day(t.created_at), reference=t.reference)
    if t.status == "failed":
        if t.failure_reason:
            return ctx.say("service.transfer_status.failed", reason=t.failure_reason, **fields)
        return ctx.say("service.transfer_status.failed_no_reason", **fields)
    return ctx.say(f"service.transfer_status.{t.status}", **fields)


@handler(
    "Transfer_Status",
    slots=(Slot("payee", prompt="To whom was the transfer?", entity="beneficiary", validator=_payee, required=False,
                kind="payee"),),
    requires_auth=True,
    risk=Risk.LOW,
    description="check the status of a transfer",
    topic="transfer status pending failed",
)
def transfer_status(ctx: HandlerContext) -> Reply:
    """Report the status of the transfer the customer means."""
    payee = ctx.slots.get("payee")
    if payee and payee.get("error"):
        return Reply(payee["error"], outcome="failed")
    try:
        transfers = ctx.bank.recent_transfers(ctx.customer_id, limit=200, payee_id=payee["id"] if payee else None)
    except BankError as exc:
        return Reply(ctx.say("service.common.failed", reason=exc), outcome="failed")
    ref = _REFERENCE.search(ctx.text or "")
    if ref:
        transfers = [t for t in transfers if t.reference == ref.group(0).upper()]
    if not transfers:
        text = ctx.say("service.transfer_status.none_to", payee=payee["name"]) if payee else \
            ctx.say("service.transfer_status.none")
        return Reply(text, outcome="failed")
    t = transfers[0]
    return Reply(_say(ctx, t), data={"transfer_reference": t.reference, "transfer_status": t.status})
