"""Slot helpers shared by several handlers: payees named loosely, amounts, the customer's accounts
and cards, and dates as customers read them.

Not a handler module (the leading underscore keeps the registry from loading it as one).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from app.bank.clock import IST
from app.bank.errors import Ambiguous, BankError, NotFound
from app.bank.text import normalise
from app.bank.views import BeneficiaryView
from app.core.money import format_money, to_decimal
from app.text.entities import parse_amount
from app.text.names import canonical_relation
from app.text.script import romanise
from handlers.base import HandlerContext, SlotError

_LEADING = re.compile(r"^(?:to|for|my|mera|meri|mere|the|ko)\s+", re.I)


def resolve_payee(ctx: HandlerContext, value: Any) -> BeneficiaryView:
    """The customer's saved payee meant by ``value``: a name spelt loosely ("priyaa"), a relation in any
    script ("mummy", "माँ", "my sister"), or both ("my sister Priya"). Raises :class:`BankError`."""
    raw = unicodedata.normalize("NFC", str(value or "")).strip()
    text = romanise(raw) if re.search(r"[\u0900-\u097f]", raw) else raw
    while _LEADING.match(text):
        text = _LEADING.sub("", text, count=1)
    try:
        return ctx.bank.resolve_beneficiary(ctx.customer_id, text or raw)
    except Ambiguous:
        raise
    except NotFound as first:
        payees = ctx.bank.beneficiaries(ctx.customer_id)
        relation = canonical_relation(text)
        words = text.split()
        if relation is None and len(words) > 1 and canonical_relation(words[0]):
            # "sister Priya": the name decides; the relation only confirms it
            try:
                return ctx.bank.resolve_beneficiary(ctx.customer_id, " ".join(words[1:]))
            except NotFound:
                relation = canonical_relation(words[0])
        if relation is not None:
            matches = [p for p in payees if relation in {canonical_relation(p.nickname or ""), canonical_relation(p.name)}]
            if len(matches) == 1:
                return matches[0]
        raise first


def payee_slot(value: Any, ctx: HandlerContext) -> dict[str, Any]:
    """Slot validator: a saved payee (see :func:`resolve_payee`)."""
    try:
        ben = resolve_payee(ctx, value)
    except BankError as exc:
        raise SlotError(str(exc)) from exc
    return {"id": ben.id, "name": ben.name, "masked": ben.masked_account}


def amount_value(value: Any, ctx: HandlerContext) -> Decimal:
    """A positive rupee amount from an ``amount`` entity or a free-text reply ("10k", "₹2,500")."""
    if isinstance(value, dict):
        currency, raw = value.get("currency", "INR"), value.get("value")
    else:
        parsed = parse_amount(str(value))
        if parsed is not None:
            currency, raw = parsed.currency, parsed.value
        else:
            currency, raw = "INR", str(value).replace(",", "").replace("₹", "").strip()
    if currency != ctx.settings.currency:
        raise SlotError(ctx.say("service.common.rupees_only", currency=currency))
    try:
        amount = to_decimal(raw)
    except ValueError as exc:
        raise SlotError(ctx.say("service.common.not_an_amount")) from exc
    if amount <= 0:
        raise SlotError(ctx.say("service.common.amount_positive"))
    limit = Decimal(ctx.settings.per_transfer_limit)
    if amount > limit:
        raise SlotError(ctx.say("service.common.over_chat_limit", limit=format_money(limit)))
    return amount


def account_slot(value: Any, ctx: HandlerContext) -> dict[str, Any]:
    """Slot validator: one of the customer's own accounts ("savings", "current", last 4 digits)."""
    try:
        acc = ctx.bank.resolve_account(ctx.customer_id, str(value))
    except BankError as exc:
        raise SlotError(str(exc)) from exc
    return {"number": acc.number, "masked": acc.masked, "type": acc.type, "balance": str(acc.balance)}


def card_slot(value: Any, ctx: HandlerContext) -> dict[str, Any]:
    """Slot validator: one of the customer's cards ("debit", "credit", last 4 digits)."""
    try:
        card = ctx.bank.resolve_card(ctx.customer_id, str(value))
    except BankError as exc:
        raise SlotError(str(exc)) from exc
    return {"last4": card.last4, "type": card.type, "label": card.label, "status": card.status}


def needs_amount_otp(ctx: HandlerContext) -> bool:
    """Money movements above the OTP threshold need an OTP (as transfers do)."""
    amount = ctx.slots.get("amount")
    if isinstance(ctx.slots.get("choice"), dict):
        amount = ctx.slots["choice"]["amount"]
    return amount is not None and to_decimal(amount) > Decimal(ctx.settings.otp_threshold)


def today(ctx: HandlerContext) -> date:
    """Today in India, by the bank's clock."""
    return ctx.bank.now().astimezone(IST).date()


def day(value: datetime | str | None) -> str:
    """``5 Dec 2026`` (IST) for a timestamp or an ISO date."""
    if value is None:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value) if "T" in value else datetime.combine(date.fromisoformat(value), datetime.min.time(), IST)
    return f"{value.astimezone(IST):%-d %b %Y}"


def words(ctx: HandlerContext) -> str:
    """The current message, normalised and in Latin letters (Devanagari romanised) for keyword checks."""
    return normalise(romanise(ctx.text or ""))
