"""Own_Account_Transfer: move money between the customer's own accounts ("move 10k from current to
savings"), confirmed, with an OTP above the threshold, exactly once (the transfer machinery's key)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from app.bank.errors import BankError
from app.core.money import format_money, to_decimal
from handlers._common import account_slot, amount_value, needs_amount_otp, words
from handlers.base import HandlerContext, Reply, Risk, Slot, SlotError
from handlers.registry import handler

_KIND = r"(savings?|sb|current|ca|\d{4,12})"
_FROM = re.compile(rf"\bfrom\s+(?:my\s+|the\s+)?(?:account\s+(?:ending\s+(?:in\s+)?)?)?{_KIND}\b")
_TO = re.compile(rf"\b(?:to|into|in)\s+(?:my\s+|the\s+)?(?:account\s+(?:ending\s+(?:in\s+)?)?)?{_KIND}\b")
# A pair names account kinds only: in "move 40000 to my current" the number is the amount.
_WORD_KIND = r"(savings?|sb|current|ca)"
_PAIR = re.compile(rf"\b{_WORD_KIND}\s+(?:a\s?c\s+|account\s+)?(?:to|into|se)\s+(?:my\s+)?{_WORD_KIND}\b")


def _refs(ctx: HandlerContext) -> tuple[str | None, str | None]:
    """(from, to) account words in the message ("from current to savings", "savings to current")."""
    text = words(ctx)
    if m := _PAIR.search(text):
        return m.group(1), m.group(2)
    source, target = _FROM.search(text), _TO.search(text)
    return _account_ref(source), _account_ref(target)


def _account_ref(m: re.Match[str] | None) -> str | None:
    """The account a from/to phrase names; bare digits count only as "account (ending) 1234"."""
    if m is None:
        return None
    if m.group(1).isdigit() and "account" not in m.group(0):
        return None
    return m.group(1)


def _other(ctx: HandlerContext, ref: str) -> str:
    """The customer's other account, when they have exactly two."""
    try:
        chosen = ctx.bank.resolve_account(ctx.customer_id, ref)
    except BankError as exc:
        raise SlotError(str(exc)) from exc
    others = [a for a in ctx.bank.accounts(ctx.customer_id) if a.id != chosen.id]
    if len(others) != 1:
        raise SlotError("")
    return others[0].number


def _default_from(ctx: HandlerContext) -> str:
    source, target = _refs(ctx)
    if source:
        return source
    if target:
        return _other(ctx, target)
    raise SlotError("")  # nothing said: ask


def _default_to(ctx: HandlerContext) -> str:
    _, target = _refs(ctx)
    if target and _refs(ctx)[0]:
        return target
    return _other(ctx, ctx.slots["from_account"]["number"])


def _to_account(value: Any, ctx: HandlerContext) -> dict[str, Any]:
    acc = account_slot(value, ctx)
    source = ctx.slots.get("from_account")
    if source and source["number"] == acc["number"]:
        raise SlotError(ctx.say("service.own_transfer.same_account", type=acc["type"], masked=acc["masked"]))
    return acc


def _amount(value: Any, ctx: HandlerContext) -> str:
    amount = amount_value(value, ctx)
    source = ctx.slots.get("from_account")
    # Said before confirmation and OTP; the bank re-checks atomically when it executes.
    if source and Decimal(source["balance"]) < amount:
        raise SlotError(ctx.say("service.common.not_enough", type=source["type"], masked=source["masked"],
                                balance=format_money(source["balance"]), amount=format_money(amount)))
    return str(amount)


def _confirm(ctx: HandlerContext) -> str:
    s = ctx.slots
    return ctx.say("service.own_transfer.confirm", amount=format_money(s["amount"]), from_type=s["from_account"]["type"],
                   from_masked=s["from_account"]["masked"], to_type=s["to_account"]["type"],
                   to_masked=s["to_account"]["masked"])


@handler(
    "Own_Account_Transfer",
    slots=(
        # Accounts first: their defaults read the first message ("from current to savings").
        Slot("from_account", prompt="From which of your accounts — savings or current?",
             prompt_key="service.own_transfer.from_prompt", entity="own_from_account", free_text=True,
             validator=account_slot, default=_default_from, kind="account"),
        Slot("to_account", prompt="To which of your accounts — savings or current?",
             prompt_key="service.own_transfer.to_prompt", entity="own_to_account", free_text=True,
             validator=_to_account, default=_default_to, kind="account"),
        Slot("amount", prompt="How much would you like to move?", prompt_key="service.own_transfer.amount_prompt",
             free_text=True, validator=_amount, kind="amount"),
    ),
    requires_auth=True,
    risk=Risk.HIGH,
    description="move money between your own accounts",
    confirm=_confirm,
    needs_otp=needs_amount_otp,
    replayable=True,
    topic="transfer between own accounts self transfer",
)
def own_account_transfer(ctx: HandlerContext) -> Reply:
    """Move the confirmed amount exactly once (a retried "yes" returns the same transfer)."""
    s = ctx.slots
    try:
        tr = ctx.bank.own_transfer(ctx.customer_id, s["from_account"]["number"], s["to_account"]["number"],
                                   to_decimal(s["amount"]), ctx.idempotency_key, session_id=ctx.session_id, channel="chat")
    except BankError as exc:
        return Reply(ctx.say("service.common.failed", reason=exc), outcome="failed")
    data = {"transfer_reference": tr.reference, "amount": s["amount"], "replayed": tr.replayed}
    if tr.replayed:
        return Reply(ctx.say("service.own_transfer.replayed", reference=tr.reference), data=data)
    return Reply(ctx.say("service.own_transfer.done", amount=format_money(s["amount"]), from_type=s["from_account"]["type"],
                         to_type=s["to_account"]["type"], reference=tr.reference,
                         balance=format_money(tr.balance_after or 0)), data=data)
