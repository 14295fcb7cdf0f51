"""Card_Bill_Payment: pay the customer's own credit-card bill — the full amount, the minimum due or an
amount — from their account, confirmed, with an OTP above the threshold, exactly once."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from app.bank.errors import BankError
from app.core.money import format_money, to_decimal
from handlers._common import account_slot, amount_value, day, needs_amount_otp, words
from handlers.base import HandlerContext, Reply, Risk, Slot, SlotError
from handlers.registry import handler

_FULL = re.compile(r"\b(full|total|entire|whole|complete|all|poora|pura|poori|puri|outstanding)\b")
_MINIMUM = re.compile(r"\b(minimum|min|mad|kam se kam)\b")


def _card(value: Any, ctx: HandlerContext) -> dict[str, Any]:
    try:
        bill = ctx.bank.card_bill(ctx.customer_id, str(value))
    except BankError as exc:
        raise SlotError(str(exc)) from exc
    return {"last4": bill.card_last4, "label": bill.card_label}


def _bill_summary(ctx: HandlerContext) -> str:
    card = ctx.slots.get("card") or _card("credit", ctx)
    bill = ctx.bank.card_bill(ctx.customer_id, card["last4"])
    return ctx.say("service.bill.summary", card=bill.card_label, outstanding=format_money(bill.outstanding),
                   due=day(bill.due_date), minimum=format_money(bill.minimum_outstanding))


def _choose(kind: str, amount: Any, ctx: HandlerContext) -> dict[str, str]:
    # The amount can come in the first message, before the card slot has its default ("pay 5000 on my card").
    card = ctx.slots.get("card") or _card("credit", ctx)
    bill = ctx.bank.card_bill(ctx.customer_id, card["last4"])
    try:
        value = ctx.bank.card_bill_amount(bill, kind, amount)
    except BankError as exc:
        raise SlotError(str(exc)) from exc
    return {"kind": kind, "amount": str(value)}


def _choice(value: Any, ctx: HandlerContext) -> dict[str, str]:
    """``full`` / ``minimum`` / an amount, from the amount entity or the words of the reply."""
    if isinstance(value, dict) and value.get("kind") in ("full", "minimum", "amount"):  # chosen by the default
        return _choose(value["kind"], value["amount"] if value["kind"] == "amount" else None, ctx)
    if isinstance(value, dict):
        return _choose("amount", amount_value(value, ctx), ctx)
    text = words(ctx) if value is None else str(value).lower()
    if _MINIMUM.search(text):
        return _choose("minimum", None, ctx)
    if _FULL.search(text):
        return _choose("full", None, ctx)
    if re.search(r"\d", text):
        return _choose("amount", amount_value(value, ctx), ctx)
    raise SlotError(ctx.say("service.bill.choice_unclear"))


def _default_choice(ctx: HandlerContext) -> dict[str, str]:
    text = words(ctx)
    if _MINIMUM.search(text) or _FULL.search(text):
        return _choice(None, ctx)
    raise SlotError(_bill_summary(ctx))  # said before the question, so the customer sees what is due


def _from_account(value: Any, ctx: HandlerContext) -> dict[str, Any]:
    acc = account_slot(value, ctx)
    choice = ctx.slots.get("choice")
    if choice and Decimal(acc["balance"]) < to_decimal(choice["amount"]):
        raise SlotError(ctx.say("service.common.not_enough", type=acc["type"], masked=acc["masked"],
                                balance=format_money(acc["balance"]), amount=format_money(choice["amount"])))
    return acc


def _confirm(ctx: HandlerContext) -> str:
    s = ctx.slots
    return ctx.say("service.bill.confirm", amount=format_money(s["choice"]["amount"]),
                   kind=ctx.say(f"service.bill.kind_{s['choice']['kind']}"), card=s["card"]["label"],
                   from_type=s["from_account"]["type"], from_masked=s["from_account"]["masked"])


@handler(
    "Card_Bill_Payment",
    slots=(
        Slot("card", prompt="Which credit card's bill — tell me the last 4 digits?", prompt_key="service.bill.card_prompt",
             entity=("card_last4",), free_text=True, validator=_card, default=lambda ctx: "credit", kind="card"),
        Slot("choice", prompt="Would you like to pay the full amount, the minimum due, or another amount?",
             prompt_key="service.bill.choice_prompt", entity="amount", free_text=True, validator=_choice,
             default=_default_choice, kind="amount"),
        Slot("from_account", prompt="From which account — savings or current?", entity="account_ref", free_text=True,
             validator=_from_account, default=lambda ctx: "savings", kind="account"),
    ),
    requires_auth=True,
    risk=Risk.HIGH,
    description="pay your credit card bill",
    confirm=_confirm,
    needs_otp=needs_amount_otp,
    replayable=True,
    topic="credit card bill payment due date minimum due",
)
def card_bill_payment(ctx: HandlerContext) -> Reply:
    """Pay the confirmed amount exactly once (a retried "yes" returns the same payment)."""
    s = ctx.slots
    try:
        paid = ctx.bank.pay_card_bill(ctx.customer_id, s["card"]["last4"], s["choice"]["kind"], s["choice"]["amount"],
                                      s["from_account"]["number"], ctx.idempotency_key, session_id=ctx.session_id)
    except BankError as exc:
        return Reply(ctx.say("service.common.failed", reason=exc), outcome="failed")
    tr = paid.transfer
    data = {"transfer_reference": tr.reference, "amount": s["choice"]["amount"], "replayed": tr.replayed}
    if tr.replayed:
        return Reply(ctx.say("service.bill.replayed", reference=tr.reference), data=data)
    return Reply(ctx.say("service.bill.done", amount=format_money(tr.amount), card=s["card"]["label"],
                         reference=tr.reference, outstanding=format_money(paid.bill.outstanding),
                         from_type=s["from_account"]["type"], balance=format_money(tr.balance_after or 0)), data=data)
