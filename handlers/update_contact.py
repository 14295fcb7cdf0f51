"""Update_Contact: change the registered e-mail or mobile number — validated, confirmed and verified with
an OTP sent to the current number (a changed number is how accounts are taken over)."""

from __future__ import annotations

import re
from typing import Any

from app.bank.errors import BankError
from app.bank.requests import clean_email, clean_mobile
from app.bank.text import mask_phone
from handlers._common import words
from handlers.base import HandlerContext, Reply, Risk, Slot, SlotError
from handlers.registry import handler

_EMAIL_WORD = re.compile(r"\b(e ?mail|mail id|email id|mail address)\b")
_PHONE_WORD = re.compile(r"\b(phone|mobile|number|cell|contact number|mob)\b")
_EMAIL_IN = re.compile(r"[^\s<>]+@[^\s<>]+")
_PHONE_IN = re.compile(r"(?<!\d)(?:\+?91[\s-]?|0)?[6-9]\d{4}[\s-]?\d{5}(?!\d)")


def _field(value: Any, ctx: HandlerContext) -> str:
    text = str(value).lower()
    if _EMAIL_IN.search(text) or _EMAIL_WORD.search(re.sub(r"[^\w\s]", " ", text)):
        return "email"
    if _PHONE_WORD.search(text) or _PHONE_IN.search(text):
        return "phone"
    raise SlotError(ctx.say("service.contact.field_unclear"))


def _default_field(ctx: HandlerContext) -> str:
    if _EMAIL_IN.search(ctx.text or "") or _EMAIL_WORD.search(words(ctx)):
        return "email"
    if _PHONE_WORD.search(words(ctx)) or _PHONE_IN.search(ctx.text or ""):
        return "phone"
    raise SlotError("")  # ask


def _value(value: Any, ctx: HandlerContext) -> str:
    text = str(value or "")
    try:
        if ctx.slots.get("field") == "email":
            found = _EMAIL_IN.search(text)
            return clean_email(found.group(0) if found else text)
        found = _PHONE_IN.search(text)
        return clean_mobile(found.group(0) if found else text)
    except BankError as exc:
        raise SlotError(str(exc)) from exc


# Any number the customer gave as the new one ("change my mobile to 12345"): validated, so a wrong one is refused.
_NUMBER_IN = re.compile(r"\+?\d[\d\s-]{2,16}\d")


def _default_value(ctx: HandlerContext) -> str:
    pattern = _EMAIL_IN if ctx.slots.get("field") == "email" else _NUMBER_IN
    found = pattern.search(ctx.text or "")
    if found:
        return _value(found.group(0), ctx)
    raise SlotError("")  # ask


def _shown(ctx: HandlerContext) -> str:
    value = ctx.slots["value"]
    return value if ctx.slots["field"] == "email" else mask_phone(value)


@handler(
    "Update_Contact",
    slots=(
        Slot("field", prompt="What would you like to update — your e-mail address or your mobile number?",
             prompt_key="service.contact.field_prompt", entity="contact_field", free_text=True, validator=_field,
             default=_default_field),
        Slot("value", prompt="What is the new e-mail address or mobile number?", prompt_key="service.contact.value_prompt",
             entity="contact_value", free_text=True, validator=_value, default=_default_value),
    ),
    requires_auth=True,
    risk=Risk.HIGH,
    description="update your e-mail or mobile number",
    confirm=lambda ctx: ctx.say("service.contact.confirm", label=ctx.say(f"service.contact.{ctx.slots['field']}"),
                                value=_shown(ctx)),
    needs_otp=lambda ctx: True,
    topic="update email mobile number contact details",
)
def update_contact(ctx: HandlerContext) -> Reply:
    """Change the detail once the OTP is verified (a retried confirmation changes nothing again)."""
    field = ctx.slots["field"]
    try:
        req = ctx.bank.update_contact(ctx.customer_id, field, ctx.slots["value"], ctx.idempotency_key)
    except BankError as exc:
        return Reply(ctx.say("service.common.failed", reason=exc), outcome="failed")
    data = {"request_reference": req.reference, "replayed": req.replayed}
    if req.replayed:
        return Reply(ctx.say("service.contact.replayed", reference=req.reference), data=data)
    return Reply(ctx.say("service.contact.done", label=ctx.say(f"service.contact.{field}"), value=_shown(ctx),
                         reference=req.reference), data=data)
