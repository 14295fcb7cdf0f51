"""Open_Account: submit an application for a new savings or current account."""

from __future__ import annotations

from typing import Any

from handlers.base import HandlerContext, Reply, Risk, Slot, SlotError
from handlers.registry import handler


def _account_type(value: Any, ctx: HandlerContext) -> str:
    text = str(value).lower()
    words = text.replace("-", " ").split()
    # A short answer ("savings", "a current account please"), not any sentence mentioning one.
    if len(words) <= 5:
        for kind in ("savings", "current"):
            if any(w.startswith(kind[:6]) for w in words):
                return kind
    raise SlotError("We offer savings and current accounts.")


@handler(
    "Open_Account",
    slots=(Slot("account_type", prompt="Would you like a savings or a current account?", free_text=True,
                validator=_account_type),),
    requires_auth=True,
    risk=Risk.MEDIUM,
    description="open a new savings or current account",
    topic="opening a savings or current account",
    confirm=lambda ctx: f"Shall I submit an application for a new {ctx.slots['account_type']} account? (yes/no)",
)
def open_account(ctx: HandlerContext) -> Reply:
    """Create the account-opening application and give its reference."""
    app = ctx.bank.open_account(ctx.customer_id, ctx.slots["account_type"])
    return Reply(
        f"Your application for a {ctx.slots['account_type']} account is in (reference {app.reference}). "
        "As an existing customer your KYC is already on file; we'll confirm within 2 working days.",
        data={"application_reference": app.reference},
    )
