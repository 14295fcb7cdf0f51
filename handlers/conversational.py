"""Greeting, Goodbye, Out_Of_Scope and Human_Handoff."""

from __future__ import annotations

from app.text.chatml import render_chatml
from handlers.base import HandlerContext, Reply, Risk
from handlers.registry import handler
from privacy.redact import redact

CAPABILITIES = (
    "check balances, transfer money to your saved beneficiaries, block a card, find a branch or ATM, "
    "open an account, check loan eligibility, answer questions about our policies and fees, "
    "or connect you to a colleague"
)


@handler("Greeting", description="say hello")
def greeting(ctx: HandlerContext) -> Reply:
    """Greet the customer and say what Sahayak can do."""
    name = ""
    if ctx.user_id:
        customer = ctx.bank.get_customer(ctx.user_id)
        if customer:
            name = " " + customer.full_name.split()[0]
    return Reply(f"Namaste{name}! I'm Sahayak, your banking assistant. I can {CAPABILITIES}. How can I help?")


@handler("Goodbye", description="end the conversation")
def goodbye(ctx: HandlerContext) -> Reply:
    """Close the conversation politely."""
    return Reply("Thank you for banking with us. Goodbye, and stay safe — we will never ask for your OTP or PIN.")


@handler("Out_Of_Scope", description="something I can't help with")
def out_of_scope(ctx: HandlerContext) -> Reply:
    """Refuse politely and offer what Sahayak can do."""
    return Reply(f"Sorry, I can only help with banking. I can {CAPABILITIES}.", outcome="refused")


@handler("Human_Handoff", risk=Risk.MEDIUM, description="talk to a person")
def human_handoff(ctx: HandlerContext) -> Reply:
    """Queue the session, with its full (redacted) history, for a staff member."""
    transcript = redact(render_chatml(ctx.history + [{"role": "user", "content": ctx.text}], add_generation_prompt=False))
    reference = ctx.services.support_desk().create_handoff(ctx.session_id, ctx.user_id, reason=redact(ctx.text),
                                                           transcript=transcript)
    return Reply(
        f"I've passed our conversation to a colleague (reference {reference}). They can see what we've discussed, "
        "so you won't need to repeat yourself. You can keep chatting with me meanwhile.",
        outcome="handoff",
        data={"handoff_reference": reference},
    )
