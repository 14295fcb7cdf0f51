"""Greeting, Goodbye, Out_Of_Scope and Human_Handoff."""

from __future__ import annotations

from app.text.chatml import render_chatml
from handlers.base import HandlerContext, Reply, Risk
from handlers.registry import handler
from privacy.redact import redact

@handler("Greeting", description="say hello")
def greeting(ctx: HandlerContext) -> Reply:
    """Greet the customer and say what Sahayak can do."""
    name = ""
    if ctx.user_id:
        customer = ctx.bank.get_customer(ctx.user_id)
        if customer:
            name = " " + customer.full_name.split()[0]
    return Reply(ctx.say("conversation.greeting", name=name, capabilities=ctx.say("conversation.capabilities")))


@handler("Goodbye", description="end the conversation")
def goodbye(ctx: HandlerContext) -> Reply:
    """Close the conversation politely."""
    return Reply(ctx.say("conversation.goodbye"))


@handler("Out_Of_Scope", description="something I can't help with")
def out_of_scope(ctx: HandlerContext) -> Reply:
    """Refuse politely and offer what Sahayak can do."""
    return Reply(ctx.say("conversation.out_of_scope", capabilities=ctx.say("conversation.capabilities")),
                 outcome="refused")


@handler("Human_Handoff", risk=Risk.MEDIUM, description="talk to a person")
def human_handoff(ctx: HandlerContext) -> Reply:
    """Queue the session, with its full (redacted) history, for a staff member."""
    transcript = redact(render_chatml(ctx.history + [{"role": "user", "content": ctx.text}], add_generation_prompt=False))
    reference = ctx.services.support_desk().create_handoff(ctx.session_id, ctx.user_id, reason=redact(ctx.text),
                                                           transcript=transcript)
    return Reply(
        ctx.say("conversation.handoff", reference=reference),
        outcome="handoff",
        data={"handoff_reference": reference},
    )
