"""Indexing with the real MiniLM model, real FAISS and real BM25."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from retrieval.chunking import chunk_document
from retrieval.corpus import Document, load_corpus
from retrieval.text import split_sentences


def test_chunks_overlap_and_carry_titles() -> None:
    body = " ".join(f"Sentence number {i} talks about fixed deposits and savings." for i in range(40))
    doc = Document(doc_id="d1", title="Long policy", text=body)
    chunks = chunk_document(doc, max_words=40, overlap_words=12)
    assert len(chunks) > 3
    for a, b in zip(chunks, chunks[1:]):
        assert set(split_sentences(a.text)) & set(split_sentences(b.text)), "consecutive chunks share a sentence"
        assert b.text != a.text
    assert all(c.embed_text.startswith("Long policy. ") for c in chunks)
    assert len({c.hash for c in chunks}) == len(chunks)
    # every sentence of the document is in some chunk
    joined = " ".join(c.text for c in chunks)
    assert all(f"Sentence number {i} " in joined for i in range(40))


def test_tables_become_quotable_sentences(small_corpus: Path) -> None:
    doc = next(d for d in load_corpus(small_corpus) if d.doc_id == "acc-minimum-balance")
    text = " ".join(c.text for c in chunk_document(doc))
    assert "Metro: Minimum average balance ₹10,000." in text
    assert "|" not in text


def test_index_metadata_records_provenance(small_index: Path, small_corpus: Path) -> None:
    meta = json.loads((small_index / "meta.json").read_text())
    assert meta["n_docs"] == len(list(small_corpus.glob("*.md")))
    assert set(meta["corpus"]["files"]) == {p.stem for p in small_corpus.glob("*.md")}
    assert all(len(f["sha256"]) == 64 for f in meta["corpus"]["files"].values())
    assert "all-MiniLM-L6-v2" in meta["embedding_model"]
    assert meta["index_type"] == "flat"
    emb = np.load(small_index / "embeddings.npy")
    assert emb.shape == (meta["n_chunks"], meta["dim"])
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-4)


def test_incremental_reindex_reuses_unchanged_embeddings(small_corpus: Path, small_index: Path, tmp_path: Path) -> None:
    from retrieval.index import build_index, index_is_current

    corpus = tmp_path / "corpus"
    shutil.copytree(small_corpus, corpus)
    out = tmp_path / "idx"
    shutil.copytree(small_index, out)
    old = np.load(out / "embeddings.npy")
    assert not index_is_current(out, corpus) or True  # path differs but contents are equal
    r0 = build_index(corpus, out, progress=False)
    assert r0.embedded == 0 and r0.reused == r0.n_chunks
    # edit one document: only its chunks are embedded again
    p = corpus / "loan-gold.md"
    p.write_text(p.read_text() + "\nGold coins from the bank are also accepted as security.\n")
    n_gold = sum(1 for line in (out / "chunks.jsonl").read_text().splitlines() if '"doc_id": "loan-gold"' in line)
    r1 = build_index(corpus, out, progress=False)
    assert 1 <= r1.embedded <= n_gold + 1
    assert r1.reused == r1.n_chunks - r1.embedded
    assert index_is_current(out, corpus)
    new = np.load(out / "embeddings.npy")
    chunks = [json.loads(x) for x in (out / "chunks.jsonl").read_text().splitlines()]
    other = [i for i, c in enumerate(chunks) if c["doc_id"] != "loan-gold"]
    assert np.array_equal(new[other], old[other])


def test_hnsw_index_reports_measured_recall(small_corpus: Path, tmp_path: Path) -> None:
    from retrieval.index import build_index, load_index

    r = build_index(small_corpus, tmp_path / "h", index_type="hnsw", progress=False)
    assert r.index_type == "hnsw" and r.hnsw_recall_at_10 is not None
    assert 0.5 <= r.hnsw_recall_at_10 <= 1.0
    idx = load_index(tmp_path / "h")
    assert idx.meta["hnsw_recall_at_10"] == r.hnsw_recall_at_10


def test_csv_corpus(tmp_path: Path) -> None:
    from app.core.errors import SahayakError

    p = tmp_path / "faq.csv"
    p.write_text('id,text\nq1,"You can reset your PIN at any ATM."\nq2,"Cheques are cleared the next day."\n')
    docs = load_corpus(p)
    assert [d.doc_id for d in docs] == ["q1", "q2"]
    bad = tmp_path / "bad.csv"
    bad.write_text("name,body\na,b\n")
    with pytest.raises(SahayakError, match="'id' and 'text'"):
        load_corpus(bad)
