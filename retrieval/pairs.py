"""Training data for the cross-encoder, generated from any corpus without hand labels.

For every chunk we make synthetic queries (corpus-agnostic templates, no knowledge of the
bank): a cropped, stop-word-thinned span of one of its sentences (inverse-cloze style: that
sentence is removed from the positive passage half of the time, so the model must match on
context and meaning rather than copy the string), a few high-IDF keywords, and title words
when the corpus has titles. Hard negatives are the first-stage retriever's best chunks from
*other* documents for that query (BM25 + bi-encoder fused), which is what the reranker will
have to separate at query time.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from dataclasses import dataclass
from typing import Callable

from retrieval.chunking import Chunk
from retrieval.text import STOPWORDS, split_sentences

_TEMPLATES = ["{q}", "{q}", "{q}", "how do i {q}", "what is {q}", "{q}?", "can i {q}", "tell me about {q}",
              "how much {q}", "what are {q}", "{q} please", "why {q}", "i need help with {q}"]
_WORD = re.compile(r"[\w₹]+(?:[.,]\d+)*")


@dataclass
class Group:
    """One training example: a query, its positive passage and hard negative passages."""

    query: str
    positive: str
    negatives: list[str]
    doc_id: str
    kind: str


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def synthetic_queries(chunk: Chunk, n: int, idf: dict[str, float], rng: random.Random) -> list[tuple[str, str, str]]:
    """``n`` (query, positive passage, kind) triples for one chunk."""
    sents = [s for s in split_sentences(chunk.text) if len(s.split()) >= 4] or [chunk.text]
    content = [w for w in _words(chunk.text) if w not in STOPWORDS and len(w) > 2]
    out: list[tuple[str, str, str]] = []
    kinds = ["span", "span", "keywords", "title" if chunk.title else "span"]
    for j in range(n):
        kind = kinds[j % len(kinds)]
        passage = chunk.embed_text
        if kind == "span":
            s = rng.choice(sents)
            w = _words(s)
            q = ""
            for _ in range(6):  # a window with at least two content words reads like a query
                length = rng.randint(min(4, len(w)), min(10, max(4, len(w))))
                start = rng.randint(0, max(0, len(w) - length))
                span = w[start : start + length]
                if sum(t not in STOPWORDS and len(t) > 2 for t in span) >= 2:
                    span = [t for t in span if t not in STOPWORDS or rng.random() < 0.7]
                    span = [t for t in span if t in STOPWORDS or rng.random() > 0.15]
                    q = " ".join(span)
                    break
            if not q:
                q = " ".join(t for t in w if t not in STOPWORDS)[:80]
            if len(sents) > 2 and rng.random() < 0.5:  # inverse cloze: hide the source sentence
                rest = " ".join(x for x in split_sentences(chunk.text) if x != s)
                passage = f"{chunk.title}. {rest}" if chunk.title else rest
        elif kind == "keywords" and content:
            uniq = list(dict.fromkeys(content))
            weights = [idf.get(t, 1.0) ** 2 for t in uniq]
            k = min(len(uniq), rng.randint(2, 4))
            picks: list[str] = []
            for _ in range(k * 3):
                t = rng.choices(uniq, weights)[0]
                if t not in picks:
                    picks.append(t)
                if len(picks) == k:
                    break
            q = " ".join(picks)
        else:
            tw = [t for t in _words(chunk.title) if t not in STOPWORDS]
            if content and rng.random() < 0.6:
                tw = tw + [rng.choice(content)]
            q = " ".join(tw) or " ".join(_words(chunk.title))
        q = rng.choice(_TEMPLATES).format(q=q.strip())
        if q.strip():
            out.append((q, passage, kind))
    return out


def build_groups(chunks: list[Chunk], first_stage: Callable[[list[str], int], list[list[int]]], *,
                 queries_per_chunk: int = 4, negatives: int = 3, max_groups: int = 600,
                 seed: int = 0) -> list[Group]:
    """Synthetic (query, positive, hard negatives) groups for a corpus.

    ``first_stage(queries, n)`` returns, for each query, the indices of its top ``n`` chunks.
    Corpora larger than ``max_groups / queries_per_chunk`` chunks are sub-sampled so the
    training time stays bounded whatever the corpus size.
    """
    rng = random.Random(seed)
    df = Counter()
    for c in chunks:
        df.update(set(_words(c.embed_text)))
    idf = {t: math.log(1 + len(chunks) / (1 + f)) for t, f in df.items()}
    # small corpora get more queries per chunk (up to 2x), large ones are sub-sampled
    per = max(1, min(2 * queries_per_chunk, max_groups // max(1, len(chunks)))) if len(chunks) * queries_per_chunk < max_groups else queries_per_chunk
    ids = list(range(len(chunks)))
    rng.shuffle(ids)
    ids = ids[: max(1, max_groups // per)]
    triples = [(ci, q, p, kind) for ci in ids for q, p, kind in synthetic_queries(chunks[ci], per, idf, rng)]
    ranked = first_stage([t[1] for t in triples], 30)
    groups: list[Group] = []
    for (ci, q, p, kind), cand in zip(triples, ranked):
        doc = chunks[ci].doc_id
        others = [i for i in cand if chunks[i].doc_id != doc]
        hard = others[:10]
        negs: list[int] = []
        if hard:
            negs += rng.sample(hard, min(len(hard), max(1, negatives - 1)))
        pool = [i for i in range(len(chunks)) if chunks[i].doc_id != doc and i not in negs]
        while len(negs) < negatives and pool:  # one random negative keeps easy cases calibrated
            negs.append(pool.pop(rng.randrange(len(pool))))
        if len(negs) < negatives:
            continue
        groups.append(Group(q, p, [chunks[i].embed_text for i in negs], doc, kind))
    rng.shuffle(groups)
    return groups
