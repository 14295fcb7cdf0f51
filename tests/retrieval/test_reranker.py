"""The corpus-trained cross-encoder: synthetic pairs, training (fast configuration), rerank mode, cache."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

import numpy as np

from models.reranker import RerankerConfig, zscore
from retrieval.rerank import split_by_document
from retrieval.pairs import build_groups, synthetic_queries
from retrieval.chunking import chunk_document
from retrieval.corpus import load_corpus


def test_synthetic_queries_come_from_the_chunk(small_corpus: Path) -> None:
    doc = next(d for d in load_corpus(small_corpus) if d.doc_id == "pay-rtgs")
    chunk = chunk_document(doc)[0]
    qs = synthetic_queries(chunk, 8, {}, random.Random(1))
    assert len(qs) == 8
    words = set(chunk.embed_text.lower().replace(",", " ").replace(".", " ").split())
    for q, passage, kind in qs:
        assert kind in {"span", "keywords", "title"}
        content = [w for w in q.replace("?", "").split() if len(w) > 3]
        assert any(w in words for w in content), q  # anchored in the chunk's own words
        assert passage.startswith(chunk.title)


def test_groups_have_hard_negatives_from_other_documents(small_kb) -> None:
    chunks = small_kb.index.chunks

    def first_stage(qs, n):
        small_kb.prime_queries(qs)
        return [[i for i, _ in small_kb._hybrid(q, n)[0][:n]] for q in qs]

    groups = build_groups(chunks, first_stage, queries_per_chunk=2, negatives=3, max_groups=30, seed=3)
    assert 10 <= len(groups) <= 60
    by_text = {c.embed_text: c.doc_id for c in chunks}
    for g in groups:
        assert len(g.negatives) == 3
        assert all(by_text[n] != g.doc_id for n in g.negatives), "negatives never come from the positive's document"


def test_validation_groups_come_from_documents_never_trained_on() -> None:
    from retrieval.pairs import Group

    groups = [Group(f"q{i}", "p", ["n"], f"doc{i % 7}", "span") for i in range(40)]
    val, train = split_by_document(groups, 0.3, seed=1)
    assert val and train and len(val) + len(train) == 40
    assert not {g.doc_id for g in val} & {g.doc_id for g in train}
    assert split_by_document(groups[:5], 0.3, seed=1) == ([], groups[:5])  # too few to hold any out


@pytest.mark.slow
def test_fast_reranker_trains_caches_and_reranks(small_index: Path) -> None:
    from app.core.settings import get_settings
    from retrieval.kb import open_knowledge_base

    models_dir = get_settings().models_dir  # persistent test cache (SAHAYAK_MODELS_HOME)
    kb = open_knowledge_base(small_index, mode="rerank", rerank_top_k=10, models_dir=models_dir,
                             reranker_config=RerankerConfig.fast())
    rr = kb.reranker()
    info = json.loads((rr.path / "reranker.json").read_text())
    assert info["train_groups"] > 0 and 0.0 <= info["alpha"] <= 1.0
    assert rr.path.parent == Path(models_dir) / "reranker"
    assert info["corpus_fingerprint"] == kb.index.meta["corpus"]["fingerprint"]

    hits = kb.search("what is the minimum amount for RTGS", k=5)
    assert len(hits) == 5 and all("rerank" in h.scores for h in hits[:5])
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    a = kb.answer("what is the minimum amount for RTGS", mode="rerank")
    assert a.provenance["model_versions"]["reranker"] == rr.version
    assert all("rerank" in s for s in a.provenance["scores"])

    # cached: the same (query, chunk) pair is not scored twice
    chunk = kb.index.chunks[0]
    rr._cache.clear()
    first = rr.score("rtgs minimum", [chunk])
    assert ("rtgs minimum", chunk.hash) in rr._cache
    assert rr.score("rtgs minimum", [chunk])[0] == first[0]

    # The cross-encoder is fused with the bi-encoder cosine of each candidate, with the configured weight.
    assert info["alpha"] == RerankerConfig.fast().alpha and info["fusion"] == "bi-encoder cosine"
    assert "alpha_synthetic_val" in info and set(info["val_mrr"]) >= {"0.0", "1.0"}
    q = "what is the minimum amount for RTGS"
    ranked = kb.search_chunks(q, k=10, mode="rerank")[: kb.rerank_top_k]
    idx = [i for i, _, _ in ranked]
    ce = np.array([st["rerank"] for _, _, st in ranked])
    cos = kb.index.embeddings[idx] @ kb._embed_query(q)
    expected = info["alpha"] * zscore(ce) + (1 - info["alpha"]) * zscore(cos)
    assert np.allclose([s for _, s, _ in ranked], expected, atol=1e-4)

    # a second open loads the cached weights instead of training again
    again = open_knowledge_base(small_index, mode="rerank", models_dir=models_dir,
                                reranker_config=RerankerConfig.fast())
    assert again.reranker().path == rr.path
