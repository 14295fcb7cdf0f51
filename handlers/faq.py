"""FAQ: answer policy questions from the knowledge base, with citations, or admit not knowing."""

from __future__ import annotations

from handlers.base import HandlerContext, Reply, Risk
from handlers.registry import handler


@handler("FAQ", requires_auth=False, risk=Risk.LOW, description="answer a question about the bank's products and policies")
def faq(ctx: HandlerContext) -> Reply:
    """Answer from the top passages of the knowledge base, citing document ids and titles.

    When the best passage is below the calibrated relevance threshold the reply says
    "I don't know" and offers a hand-off instead of guessing (outcome ``refused``).
    """
    answer = ctx.services.knowledge_base().answer(ctx.text)
    citations = [{k: c[k] for k in ("doc_id", "title", "chunk_id", "passage")} for c in answer.citations]
    return Reply(
        text=answer.text,
        outcome="success" if answer.confident else "refused",
        data={"citations": citations, "retrieval": answer.provenance, "offer_handoff": not answer.confident},
    )
