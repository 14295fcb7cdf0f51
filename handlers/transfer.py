"""Fund_Transfer: send money to a saved beneficiary, with confirmation, OTP and idempotency."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from app.bank.errors import BankError
from app.core.money import format_money, to_decimal
from app.text.entities import parse_amount
from app.text.names import payee_reference
from handlers._common import payee_slot
from handlers.base import HandlerContext, Reply, Risk, Slot, SlotError
from handlers.registry import handler


def _beneficiary(value: Any, ctx: HandlerContext) -> dict[str, Any]:
    # The shared resolver: loose spellings ("priyaa"), relations in either script ("mummy", "माँ").
    try:
        return payee_slot(value, ctx)
    except SlotError:
        # A loose answer around the name ("the usual one, Mom", "to Vikram please").
        ref = payee_reference(str(value))
        if ref.lower() == str(value).strip().lower():
            raise
        try:
            return payee_slot(ref, ctx)
        except SlotError:
            pass
        raise


def _amount(value: Any, ctx: HandlerContext) -> str:
    if isinstance(value, dict):
        currency = value.get("currency", "INR")
        raw = value.get("value")
    else:  # a free-text reply to "How much?" ("0", "-500", "about 2k")
        parsed = parse_amount(str(value))
        if parsed is not None:
            currency, raw = parsed.currency, parsed.value
        else:
            currency, raw = "INR", str(value).replace(",", "").replace("₹", "").strip()
    if currency != ctx.settings.currency:
        raise SlotError(f"I can only send money in rupees (INR), not {currency}.")
    try:
        amount = to_decimal(raw)
    except ValueError as exc:
        raise SlotError("That doesn't look like an amount.") from exc
    if amount <= 0:
        raise SlotError("The amount must be more than zero.")
    limit = Decimal(ctx.settings.per_transfer_limit)
    if amount > limit:
        raise SlotError(f"The most I can send in one chat transfer is {format_money(limit)}.")
    return str(amount)


def _from_account(value: Any, ctx: HandlerContext) -> dict[str, Any]:
    try:
        acc = ctx.bank.resolve_account(ctx.customer_id, str(value))
    except BankError as exc:
        raise SlotError(str(exc)) from exc
    # Say so before confirmation and OTP; the bank re-checks atomically when it executes.
    if "amount" in ctx.slots and acc.balance < to_decimal(ctx.slots["amount"]):
        raise SlotError(
            f"Your {acc.type} account {acc.masked} has {format_money(acc.balance)}, not enough for "
            f"{format_money(ctx.slots['amount'])}."
        )
    return {"number": acc.number, "masked": acc.masked, "type": acc.type}


def _confirm(ctx: HandlerContext) -> str:
    s = ctx.slots
    return ctx.say("transfer.confirm", amount=format_money(s["amount"]), from_type=s["from_account"]["type"],
                   from_masked=s["from_account"]["masked"], name=s["beneficiary"]["name"],
                   masked=s["beneficiary"]["masked"])


def _needs_otp(ctx: HandlerContext) -> bool:
    return to_decimal(ctx.slots["amount"]) > Decimal(ctx.settings.otp_threshold)


@handler(
    "Fund_Transfer",
    slots=(
        Slot("beneficiary", prompt="Who would you like to send money to?", free_text=True, validator=_beneficiary),
        Slot("amount", prompt="How much would you like to send?", free_text=True, validator=_amount),
        Slot("from_account", prompt="From which account — savings or current?", entity="account_ref",
             free_text=True, validator=_from_account, default=lambda ctx: "savings"),
    ),
    requires_auth=True,
    risk=Risk.HIGH,
    description="transfer money to a beneficiary",
    topic="fund transfer to a payee: NEFT IMPS charges and limits",
    # A retried "yes" re-runs the transfer with the same idempotency key: the bank answers
    # "already completed" and never debits twice.
    replayable=True,
    confirm=_confirm,
    needs_otp=_needs_otp,
)
def fund_transfer(ctx: HandlerContext) -> Reply:
    """Execute the confirmed transfer exactly once (the idempotency key makes retries safe)."""
    s = ctx.slots
    try:
        tr = ctx.bank.transfer(
            ctx.customer_id,
            s["from_account"]["number"],
            s["beneficiary"]["id"],
            to_decimal(s["amount"]),
            idempotency_key=ctx.idempotency_key,
            session_id=ctx.session_id,
            channel="chat",
        )
    except BankError as exc:
        return Reply(ctx.say("transfer.failed", reason=exc), outcome="failed")
    data = {"transfer_reference": tr.reference, "amount": s["amount"], "replayed": tr.replayed}
    if tr.replayed:
        return Reply(ctx.say("transfer.replayed", reference=tr.reference), data=data)
    text = ctx.say("transfer.done", amount=format_money(s["amount"]), name=s["beneficiary"]["name"], reference=tr.reference)
    if getattr(tr, "balance_after", None) is not None:
        text += ctx.say("transfer.balance_after", from_type=s["from_account"]["type"], balance=format_money(tr.balance_after))
    return Reply(text, data=data)
