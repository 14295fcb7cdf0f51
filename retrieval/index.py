"""Building and loading the persisted index: chunks, embeddings, FAISS, BM25 and provenance metadata.

Layout of an index folder::

    chunks.jsonl      one Chunk per line (ids, titles, text, sha256 of the embedded text)
    embeddings.npy    float32, L2-normalised, one row per chunk (same order)
    faiss.index       exact inner-product index (or HNSW for large corpora)
    meta.json         corpus path + per-file hashes, model versions, chunking parameters, counts

Re-indexing is incremental: a chunk whose embedded text is unchanged (same sha256) reuses
its stored vector, so editing one document re-embeds only that document's chunks.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rank_bm25 import BM25Okapi
from tqdm import tqdm

from app.core.errors import SahayakError
from models.embeddings import embedding_model_version, load_sentence_model
from retrieval.chunking import Chunk, chunk_document
from retrieval.corpus import Document, load_corpus, sha256_text
from retrieval.text import tokenize

if TYPE_CHECKING:
    import faiss

INDEX_FORMAT = 1
CHUNK_WORDS = 110
CHUNK_OVERLAP = 30
# Exact search is fast enough below this many chunks (a flat scan of 50k x 384 floats is ~5 ms).
HNSW_THRESHOLD = 50_000


@dataclass
class BuildReport:
    """What an (incremental) build did."""

    n_docs: int
    n_chunks: int
    embedded: int
    reused: int
    index_type: str
    seconds: float
    hnsw_recall_at_10: float | None = None
    out_dir: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def corpus_fingerprint(docs: list[Document]) -> str:
    """One hash over every document hash (changes when any document changes)."""
    return sha256_text("\n".join(f"{d.doc_id}:{d.sha256}" for d in docs))


def _progress(iterable, total: int, desc: str, show: bool):
    if not show:
        return iterable
    return tqdm(iterable, total=total, desc=desc, unit="batch", leave=False)


def embedding_dim(model) -> int:
    """The model's output dimension (the accessor was renamed in sentence-transformers 5)."""
    fn = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(fn())


def embed_texts(texts: list[str], model, batch_size: int = 64, progress: bool = False) -> np.ndarray:
    """Normalised float32 embeddings of ``texts`` with a progress bar over batches."""
    if not texts:
        return np.zeros((0, embedding_dim(model)), dtype="float32")
    batches = [texts[i : i + batch_size] for i in range(0, len(texts), batch_size)]
    out = []
    for b in _progress(batches, len(batches), "embedding", progress):
        out.append(model.encode(b, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                                show_progress_bar=False))
    return np.vstack(out).astype("float32")


def make_faiss_index(emb: np.ndarray, index_type: str) -> "faiss.Index":
    import faiss  # heavy: faiss (~0.1 s), only building or loading an index needs it

    dim = emb.shape[1]
    if index_type == "hnsw":
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = 64
    else:
        index = faiss.IndexFlatIP(dim)
    if len(emb):
        index.add(emb)
    return index


def measure_recall(emb: np.ndarray, approx: "faiss.Index", n_queries: int = 200, k: int = 10, seed: int = 0) -> float:
    """Recall@k of an approximate index against exact search, using perturbed stored vectors as queries."""
    rng = np.random.default_rng(seed)
    n = min(n_queries, len(emb))
    if n == 0:
        return 1.0
    q = emb[rng.choice(len(emb), n, replace=False)] + rng.normal(0, 0.05, (n, emb.shape[1])).astype("float32")
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    exact = make_faiss_index(emb, "flat")
    k = min(k, len(emb))
    _, e = exact.search(q.astype("float32"), k)
    _, a = approx.search(q.astype("float32"), k)
    return float(np.mean([len(set(e[i]) & set(a[i])) / k for i in range(n)]))


def build_index(corpus: str | Path, out_dir: str | Path, *, model=None, index_type: str = "auto",
                progress: bool = True) -> BuildReport:
    """Build (or incrementally update) the index of ``corpus`` in ``out_dir``."""
    t0 = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    docs = load_corpus(corpus)
    chunks = [c for d in docs for c in chunk_document(d, CHUNK_WORDS, CHUNK_OVERLAP)]
    model = model or load_sentence_model()

    cached: dict[str, np.ndarray] = {}
    old_meta = _read_json(out / "meta.json")
    if old_meta and old_meta.get("embedding_model") == embedding_model_version() and (out / "embeddings.npy").exists():
        old_chunks = _read_chunks(out / "chunks.jsonl")
        old_emb = np.load(out / "embeddings.npy")
        if len(old_chunks) == len(old_emb):
            cached = {c.hash: old_emb[i] for i, c in enumerate(old_chunks)}

    todo = [i for i, c in enumerate(chunks) if c.hash not in cached]
    new_emb = embed_texts([chunks[i].embed_text for i in todo], model, progress=progress)
    dim = embedding_dim(model)
    emb = np.zeros((len(chunks), dim), dtype="float32")
    fresh = dict(zip(todo, new_emb))
    for i, c in enumerate(chunks):
        emb[i] = fresh[i] if i in fresh else cached[c.hash]

    kind = index_type if index_type != "auto" else ("hnsw" if len(chunks) > HNSW_THRESHOLD else "flat")
    index = make_faiss_index(emb, kind)
    recall = measure_recall(emb, index) if kind == "hnsw" else None

    import faiss  # heavy: as in make_faiss_index

    tmp = out / ".tmp"
    tmp.mkdir(exist_ok=True)
    np.save(tmp / "embeddings.npy", emb)
    faiss.write_index(index, str(tmp / "faiss.index"))
    with (tmp / "chunks.jsonl").open("w", encoding="utf-8") as fh:
        for c in chunks:
            fh.write(json.dumps(c.to_dict(), ensure_ascii=False) + "\n")
    meta = {
        "format": INDEX_FORMAT,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "corpus": {"path": str(Path(corpus).resolve()), "fingerprint": corpus_fingerprint(docs),
                   "files": {d.doc_id: {"source": d.source, "sha256": d.sha256, "title": d.title} for d in docs}},
        "embedding_model": embedding_model_version(),
        "chunking": {"max_words": CHUNK_WORDS, "overlap_words": CHUNK_OVERLAP},
        "index_type": kind,
        "hnsw_recall_at_10": recall,
        "n_docs": len(docs),
        "n_chunks": len(chunks),
        "dim": dim,
    }
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False), encoding="utf-8")
    # Replace the files one by one with atomic renames so a reader never sees a half-written index.
    for name in ("embeddings.npy", "faiss.index", "chunks.jsonl", "meta.json"):
        os.replace(tmp / name, out / name)
    tmp.rmdir()
    return BuildReport(len(docs), len(chunks), len(todo), len(chunks) - len(todo), kind,
                       round(time.perf_counter() - t0, 3), recall, str(out))


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _read_chunks(path: Path) -> list[Chunk]:
    with path.open(encoding="utf-8") as fh:
        return [Chunk(**json.loads(line)) for line in fh if line.strip()]


@dataclass
class LoadedIndex:
    """An index in memory: chunks, vectors, FAISS and BM25."""

    path: Path
    meta: dict
    chunks: list[Chunk]
    embeddings: np.ndarray
    faiss_index: Any
    bm25: Any
    titles: dict[str, str] = field(default_factory=dict)

    @property
    def doc_ids(self) -> set[str]:
        return set(self.titles)


def load_index(path: str | Path) -> LoadedIndex:
    """Load an index folder written by :func:`build_index` (BM25 is rebuilt from the chunks; it takes ms)."""
    import faiss  # heavy: as in make_faiss_index

    p = Path(path)
    meta = _read_json(p / "meta.json")
    if not meta:
        raise SahayakError(f"no index at {p}: run `sahayak kb index --corpus PATH --out {p}` first")
    if meta.get("format") != INDEX_FORMAT:
        raise SahayakError(f"index at {p} has format {meta.get('format')}, expected {INDEX_FORMAT}; re-index it")
    chunks = _read_chunks(p / "chunks.jsonl")
    emb = np.load(p / "embeddings.npy")
    index = faiss.read_index(str(p / "faiss.index"))
    bm25 = BM25Okapi([tokenize(c.embed_text) or ["_"] for c in chunks])
    titles = {d: f["title"] for d, f in meta["corpus"]["files"].items()}
    return LoadedIndex(p, meta, chunks, emb, index, bm25, titles)


def index_is_current(index_dir: str | Path, corpus: str | Path) -> bool:
    """True when ``index_dir`` holds an index of exactly the current contents of ``corpus``."""
    meta = _read_json(Path(index_dir) / "meta.json")
    if not meta or meta.get("format") != INDEX_FORMAT:
        return False
    try:
        docs = load_corpus(corpus)
    except SahayakError:
        return False
    return (meta["corpus"]["fingerprint"] == corpus_fingerprint(docs)
            and meta.get("embedding_model") == embedding_model_version())
