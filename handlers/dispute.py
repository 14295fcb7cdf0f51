"""Dispute: a disputed payment, or the recall of money sent to the wrong person, becomes a case with a
reference and a resolution date (the SLA days of data/bank_facts.yaml)."""

from __future__ import annotations

import re
from typing import Any

from app.bank.errors import BankError
from app.bank.facts import load_facts
from app.core.money import format_money
from handlers._common import day, resolve_payee, words
from handlers.base import HandlerContext, Reply, Risk, Slot, SlotError
from handlers.registry import handler

_RECALL = re.compile(r"\b(wrong|galat|galti|mistake|mistakenly|by mistake|accidentally|recall|reverse|wrongly)\b")
_REFERENCE = re.compile(r"\bTXN\d{6}[0-9A-F]{8}\b", re.I)
_CARD = re.compile(r"\b(card|merchant|swipe|pos|online purchase|shop)\b")


def _case(ctx: HandlerContext) -> str:
    return "recall" if _RECALL.search(words(ctx)) else "dispute"


def _transfer_fields(t: Any) -> dict[str, str]:
    return {"reference": t.reference, "payee": t.beneficiary, "amount": str(t.amount), "status": t.status,
            "date": day(t.created_at)}


def _transaction(value: Any, ctx: HandlerContext) -> dict[str, Any]:
    if isinstance(value, dict) and ("reference" in value or "card" in value):  # found by the default
        return value
    text = str(value or "")
    ref = _REFERENCE.search(text) or _REFERENCE.search(ctx.text or "")
    transfers = ctx.bank.recent_transfers(ctx.customer_id, limit=200)
    if ref:
        found = [t for t in transfers if t.reference == ref.group(0).upper()]
        if not found:
            raise SlotError(ctx.say("service.dispute.unknown_reference", reference=ref.group(0).upper()))
        return _transfer_fields(found[0])
    if _CARD.search(text.lower()) and ctx.slots.get("case") == "dispute":
        return {"card": "yes"}
    try:
        payee = resolve_payee(ctx, text)
    except BankError as exc:
        raise SlotError(str(exc)) from exc
    found = [t for t in transfers if t.beneficiary == payee.name and t.status != "failed"] or \
        [t for t in transfers if t.beneficiary == payee.name]
    if not found:
        raise SlotError(ctx.say("service.dispute.no_transfer", payee=payee.name))
    return _transfer_fields(found[0])


_CARD_CHARGE = re.compile(r"\b(atm|charged|debited|deducted|double charged|twice|kat gaye|kat gaya|kata)\b")


def _default_transaction(ctx: HandlerContext) -> dict[str, Any]:
    if _REFERENCE.search(ctx.text or ""):
        return _transaction(ctx.text, ctx)
    # "swiggy charged me twice on my debit card", "the ATM didn't give cash but 5000 got debited":
    # a card or ATM payment, said in the first message.
    text = words(ctx)
    if ctx.slots.get("case") == "dispute" and (_CARD.search(text) or _CARD_CHARGE.search(text)):
        return {"card": "yes"}
    raise SlotError("")  # ask which payment


def _what(ctx: HandlerContext) -> str:
    tx = ctx.slots["transaction"]
    if tx.get("card"):
        return ctx.say("service.dispute.card_payment")
    return ctx.say("service.dispute.transfer_label", amount=format_money(tx["amount"]), payee=tx["payee"],
                   date=tx["date"], reference=tx["reference"])


def _days(ctx: HandlerContext) -> int:
    rules = load_facts()["service_requests"]
    tx = ctx.slots["transaction"]
    if ctx.slots["case"] == "recall":
        return int(rules["wrong_transfer_recall_days"])
    if tx.get("status") == "failed":
        return int(rules["failed_transfer_dispute_days"])
    return int(rules["card_dispute_resolution_days"])


@handler(
    "Dispute",
    slots=(
        Slot("case", prompt="Is this a payment you dispute, or money sent to the wrong person?", entity="dispute_case",
             default=_case),
        Slot("transaction", prompt="Which payment is it about? Tell me the payee's name or the transfer reference "
             "(TXN…), or say 'card' for a card payment.", prompt_key="service.dispute.transaction_prompt",
             entity="beneficiary", free_text=True, validator=_transaction, default=_default_transaction, kind="payee"),
    ),
    requires_auth=True,
    risk=Risk.MEDIUM,
    description="raise a dispute or recall a wrong transfer",
    confirm=lambda ctx: ctx.say("service.dispute.confirm", kind=ctx.say(f"service.dispute.kind_{ctx.slots['case']}"),
                                what=_what(ctx), days=_days(ctx)),
    topic="dispute chargeback wrong transfer recall",
)
def dispute(ctx: HandlerContext) -> Reply:
    """Open the case once (a retried confirmation returns the same case)."""
    tx, recall = ctx.slots["transaction"], ctx.slots["case"] == "recall"
    try:
        case = ctx.bank.raise_dispute(ctx.customer_id, ctx.idempotency_key, transfer_reference=tx.get("reference"),
                                      description=ctx.text, recall=recall)
    except BankError as exc:
        return Reply(ctx.say("service.common.failed", reason=exc), outcome="failed")
    data = {"case_reference": case.reference, "due_by": case.due_by.isoformat() if case.due_by else None}
    if case.replayed:
        return Reply(ctx.say("service.dispute.replayed", reference=case.reference), data=data)
    key = "service.dispute.done_recall" if recall else "service.dispute.done_dispute"
    return Reply(ctx.say(key, reference=case.reference, what=_what(ctx), due=day(case.due_by)), data=data)
