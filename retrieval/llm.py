"""Optional LLM modes with the local instruct model (SmolLM2 via ``models/llm.py``).

* :func:`llm_rerank` — the model judges each candidate passage ("does it answer the question?")
  and the candidates are ordered by P(yes) (pointwise; one forward pass per candidate, no sampling).
* :func:`generate_answer` — a ChatML prompt holding only the retrieved passages; the reply must cite
  passage ids in brackets. :func:`check_grounding` verifies that every cited id was given, and that
  every number in the reply appears in the cited passages; a reply that fails is not used.

Both are measured in ``bench/retrieval.py --llm`` and are off by default (see docs/retrieval.md).
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

from app.text.chatml import render_chatml
from models.llm import llm_model_version, load_llm

if TYPE_CHECKING:
    from retrieval.chunking import Chunk
    from retrieval.types import Hit

SYSTEM_RERANK = "You judge whether a bank policy passage answers a customer's question. Reply Yes or No."
SYSTEM_ANSWER = (
    "You are Sahayak, a bank assistant. Answer the customer's question in one or two sentences using ONLY "
    "the passages given. After each fact, cite its passage id in square brackets, e.g. [card-block]. "
    "If the passages do not answer the question, say you don't know."
)
_NUM = re.compile(r"\d[\d,]*(?:\.\d+)?")


def _model():
    tok, model = load_llm()
    return tok, model, llm_model_version()


def llm_rerank(query: str, chunks: list["Chunk"], max_passage_chars: int = 700) -> list[float]:
    """P(yes) that each passage answers ``query`` (input order)."""
    import torch  # heavy: torch (~1 s), only the LLM modes need it

    tok, model, _ = _model()
    yes = tok.encode("Yes", add_special_tokens=False)[0]
    no = tok.encode("No", add_special_tokens=False)[0]
    scores = []
    with torch.inference_mode():
        for c in chunks:
            prompt = render_chatml([
                {"role": "system", "content": SYSTEM_RERANK},
                {"role": "user", "content": f"Question: {query}\n\nPassage: {c.embed_text[:max_passage_chars]}\n\n"
                                            "Does the passage answer the question? Answer Yes or No."},
            ])
            ids = tok(prompt, return_tensors="pt")
            logits = model(**ids).logits[0, -1]
            pair = torch.stack([logits[yes], logits[no]]).float().softmax(0)
            scores.append(float(pair[0]))
    return scores


def check_grounding(reply: str, passages: dict[str, str]) -> dict[str, Any]:
    """Citations must name given passages; numbers must occur in the cited passages' text."""
    cited = re.findall(r"\[([^\[\]]+)\]", reply)
    cited_ids = [c.strip() for c in cited]
    unknown = [c for c in cited_ids if c not in passages]
    source = " ".join(passages[c] for c in cited_ids if c in passages)
    src_nums = {n.replace(",", "") for n in _NUM.findall(source)}
    body = re.sub(r"\[[^\[\]]+\]", " ", reply)
    nums = [n.replace(",", "").rstrip(".") for n in _NUM.findall(body)]
    unsupported = [n for n in nums if n not in src_nums]
    ok = bool(cited_ids) and not unknown and not unsupported
    return {"grounded": ok, "cited": cited_ids, "unknown_citations": unknown, "unsupported_numbers": unsupported}


def generate_answer(question: str, hits: list["Hit"], max_new_tokens: int = 80, n_passages: int = 3) -> dict[str, Any]:
    """A generated answer from the top passages, with its grounding check and timing."""
    import torch  # heavy: torch (~1 s), only the LLM modes need it

    tok, model, version = _model()
    used = hits[:n_passages]
    ctx = "\n\n".join(f"[{h.doc_id}] {h.title}: {h.text}" for h in used)
    prompt = render_chatml([
        {"role": "system", "content": SYSTEM_ANSWER},
        {"role": "user", "content": f"Passages:\n{ctx}\n\nQuestion: {question}"},
    ])
    t = time.perf_counter()
    ids = tok(prompt, return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tok.eos_token_id)
    reply = tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).strip()
    check = check_grounding(reply, {h.doc_id: h.text for h in used})
    return {"text": reply, "model": version, "latency_ms": round((time.perf_counter() - t) * 1000, 1), **check}
