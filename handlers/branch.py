"""Branch_Location: nearest branches and ATMs by pincode or area."""

from __future__ import annotations

from typing import Any

from app.bank.errors import BankError
from handlers.base import HandlerContext, Reply, Risk, Slot, SlotError
from handlers.registry import handler


def _location(value: Any, ctx: HandlerContext) -> str:
    # Only something we can actually search near counts as an answer, so "what's my balance?"
    # asked at this prompt is a new question rather than a place name.
    text = str(value).strip()
    if len(text) < 3:
        raise SlotError("Please give a 6-digit pincode or an area name.")
    try:
        found = ctx.bank.branches_near(text, limit=1)
    except BankError as exc:
        raise SlotError(str(exc)) from exc
    if not found:
        raise SlotError("I couldn't find that place. Please give a 6-digit pincode or an area name.")
    return text


@handler(
    "Branch_Location",
    slots=(Slot("location", prompt="Which pincode or area should I search near?", entity=("pincode", "location"),
                free_text=True, validator=_location),),
    requires_auth=False,
    risk=Risk.LOW,
    description="find a branch or ATM near you",
)
def branch_location(ctx: HandlerContext) -> Reply:
    """List the nearest branches/ATMs."""
    branches = ctx.bank.branches_near(ctx.slots["location"], limit=3)
    if not branches:
        return Reply(f"I couldn't find a branch or ATM near “{ctx.slots['location']}”. Try a 6-digit pincode.",
                     outcome="failed")
    lines = []
    for b in branches:
        dist = f" — {b.distance_km:.1f} km" if getattr(b, "distance_km", None) is not None else ""
        lines.append(f"• {b.name} ({b.kind.upper() if b.kind == 'atm' else b.kind}), {b.address}, {b.city} {b.pincode}{dist}. {b.hours or ''}".rstrip())
    return Reply("Nearest to " + ctx.slots["location"] + ":\n" + "\n".join(lines),
                 data={"branches": [b.code for b in branches]})
