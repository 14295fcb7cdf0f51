"""Composing a short extractive answer from retrieved passages, with citations.

The answer quotes whole sentences of the best passage (never invents text), so every
number in it comes from the cited document and can be checked against it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from retrieval.text import split_sentences, tokenize

if TYPE_CHECKING:
    from retrieval.types import Hit

MAX_SENTENCES = 3
MAX_WORDS = 80


def _rank_sentences(question: str, sentences: list[str], qvec: np.ndarray, model: Any) -> np.ndarray:
    """Score sentences by meaning (cosine to the question) plus a small bonus for shared words."""
    emb = model.encode(sentences, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    cos = emb @ qvec
    qtok = set(tokenize(question))
    overlap = np.array([len(qtok & set(tokenize(s))) / (len(qtok) or 1) for s in sentences])
    return cos + 0.3 * overlap


def compose_answer(question: str, hits: list["Hit"], qvec: np.ndarray, model: Any) -> tuple[str, list[dict[str, str]]]:
    """Quote the most relevant sentences of the top passage (in document order) and cite it.

    When the second document's best sentence is nearly as relevant (a question spanning two
    policies), one sentence of it is added with its own citation.
    """
    top = hits[0]
    sents = split_sentences(top.text)
    scores = _rank_sentences(question, sents, qvec, model)
    order = list(np.argsort(-scores))
    chosen: list[int] = []
    words = 0
    for i in order:
        n = len(sents[i].split())
        if chosen and (words + n > MAX_WORDS or scores[i] < scores[order[0]] - 0.25):
            break
        chosen.append(int(i))
        words += n
        if len(chosen) >= MAX_SENTENCES:
            break
    quote = " ".join(sents[i] for i in sorted(chosen))
    citations = [{"doc_id": top.doc_id, "title": top.title, "chunk_id": top.chunk_id, "passage": top.text}]
    parts = [quote]
    if len(hits) > 1 and hits[1].doc_id != top.doc_id:
        s2 = split_sentences(hits[1].text)
        sc2 = _rank_sentences(question, s2, qvec, model)
        j = int(np.argmax(sc2))
        if sc2[j] >= scores[order[0]] - 0.05 and s2[j] not in quote:
            parts.append(s2[j])
            citations.append({"doc_id": hits[1].doc_id, "title": hits[1].title, "chunk_id": hits[1].chunk_id,
                              "passage": hits[1].text})
    sources = "; ".join(f"{c['title']} [{c['doc_id']}]" for c in citations)
    return " ".join(parts) + f"\n\nSource: {sources}", citations
