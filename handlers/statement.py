"""Account_Statement: a CSV statement of one account for a period, behind a signed, owner-only,
expiring link in the chat (served by ``app/web/statements.py``)."""

from __future__ import annotations

from typing import Any

from app.bank.errors import BankError
from app.bank.facts import load_facts
from app.text.dates import extract_period
from handlers._common import account_slot, day, today
from handlers.base import HandlerContext, Reply, Risk, Slot, SlotError
from handlers.registry import handler


def _period(value: Any, ctx: HandlerContext) -> dict[str, str]:
    if isinstance(value, dict) and value.get("from") and value.get("to"):
        return {"from": str(value["from"]), "to": str(value["to"])}
    found = extract_period(str(value), today(ctx))
    if found is None:
        raise SlotError(ctx.say("service.statement.period_unclear"))
    return found


@handler(
    "Account_Statement",
    slots=(
        Slot("period", prompt="For which period would you like the statement — for example last month, the last 3 "
             "months, or Jan to March?", prompt_key="service.statement.period_prompt", entity="period",
             free_text=True, validator=_period, kind="period"),
        Slot("account", prompt="For which account — savings or current?", entity="account_ref", free_text=True,
             validator=account_slot, default=lambda ctx: "savings", kind="account"),
    ),
    requires_auth=True,
    risk=Risk.LOW,
    description="get an account statement",
    topic="account statement download",
)
def account_statement(ctx: HandlerContext) -> Reply:
    """Write the statement file and reply with its signed link."""
    s = ctx.slots
    try:
        st = ctx.bank.create_statement(ctx.customer_id, s["account"]["number"], s["period"]["from"], s["period"]["to"])
    except BankError as exc:
        return Reply(ctx.say("service.common.failed", reason=exc), outcome="failed")
    url = ctx.bank.statement_link(st)
    minutes = load_facts()["service_requests"]["statement_link_validity_minutes"]
    text = ctx.say("service.statement.ready", type=st.account_type, masked=st.account_masked, start=day(st.period_from),
                   end=day(st.period_to), rows=st.rows, url=url, minutes=minutes)
    return Reply(text, data={"statement_url": url, "statement_expires": st.expires_at.isoformat(),
                             "statement_rows": st.rows, "statement_file": st.filename})
