"""Check_Balance: the customer's own account balances."""

from __future__ import annotations

from app.core.money import format_money
from handlers.base import HandlerContext, Reply, Risk, Slot
from handlers.registry import handler


@handler(
    "Check_Balance",
    slots=(Slot("account", prompt="Which account — savings or current?", entity="account_ref", required=False),),
    requires_auth=True,
    risk=Risk.LOW,
    description="check your account balance",
)
def check_balance(ctx: HandlerContext) -> Reply:
    """Tell the customer the balance of one account, or of all their accounts."""
    ref = ctx.slots.get("account")
    if ref:
        accounts = [ctx.bank.resolve_account(ctx.customer_id, ref)]
    else:
        accounts = ctx.bank.accounts(ctx.customer_id)
    lines = [ctx.say("balance.line", type=a.type.title(), masked=a.masked, amount=format_money(a.balance, a.currency))
             for a in accounts]
    if len(lines) == 1:
        text = ctx.say("balance.one", line=f"{lines[0][0].lower()}{lines[0][1:]}")
    else:
        text = ctx.say("balance.many", lines="\n".join(f"• {line}" for line in lines))
    return Reply(text, data={"accounts": [{"masked": a.masked, "type": a.type} for a in accounts]})
