"""The knowledge base: BM25, dense (FAISS), hybrid (reciprocal rank fusion) and reranked search,
plus cited answers with a calibrated "I don't know"."""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from app.core.errors import SahayakError
from models.embeddings import load_sentence_model
from models.llm import llm_model_version
from models.reranker import RerankerConfig
from retrieval.answer import compose_answer
from retrieval.index import LoadedIndex, load_index
from retrieval.llm import generate_answer, llm_rerank
from retrieval.rerank import reranker_for_index
from retrieval.text import tokenize
from retrieval.types import Answer, Hit

MODES = ("bm25", "dense", "hybrid", "rerank", "llm")  # llm: the local instruct model orders the hybrid top-k
RRF_K = 60  # the usual RRF constant: damps the influence of the very first ranks
CANDIDATES = 50  # chunks taken from each first-stage retriever before fusion
DEFAULT_THRESHOLD = 0.40
QUERY_CACHE = 8192  # embedded queries kept (LRU); reranker training primes a few thousand at once  # used only when no calibration file exists


class KnowledgeBase:
    """Search and answer over one loaded index. Thread-safe: searches only read shared state."""

    def __init__(self, index: LoadedIndex, *, mode: str = "hybrid", rerank_top_k: int = 20,
                 threshold: float | None = None, reranker: Any = None, reranker_loader: Any = None,
                 generate: bool = False) -> None:
        if mode not in MODES:
            raise SahayakError(f"unknown retrieval mode {mode!r}; use one of {', '.join(MODES)}")
        self.index = index
        self.mode = mode
        self.rerank_top_k = rerank_top_k
        self.generate = generate  # LLM-written answers (grounding-checked); off by default
        self._reranker = reranker
        self._reranker_loader = reranker_loader
        self._lock = threading.Lock()
        self._rr_lock = threading.Lock()
        self._qcache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._pos = {c.chunk_id: i for i, c in enumerate(index.chunks)}
        calib = _read_calibration(index.path)
        self.calibration = calib
        self._threshold_override = threshold
        self.threshold = threshold if threshold is not None else calib.get("threshold", DEFAULT_THRESHOLD)
        self.model = load_sentence_model()

    # --- first stages ------------------------------------------------------------------
    def _embed_query(self, query: str) -> np.ndarray:
        with self._lock:
            if query in self._qcache:
                self._qcache.move_to_end(query)
                return self._qcache[query]
        v = self.model.encode([query], normalize_embeddings=True, convert_to_numpy=True,
                              show_progress_bar=False)[0].astype("float32")
        with self._lock:
            self._qcache[query] = v
            if len(self._qcache) > QUERY_CACHE:
                self._qcache.popitem(last=False)
        return v

    def prime_queries(self, queries: list[str], batch_size: int = 64) -> None:
        """Embed many queries in batches (much faster than one by one) into the query cache."""
        todo = [q for q in dict.fromkeys(queries) if q not in self._qcache]
        for i in range(0, len(todo), batch_size):
            b = todo[i : i + batch_size]
            vecs = self.model.encode(b, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                                     show_progress_bar=False).astype("float32")
            with self._lock:
                for q, v in zip(b, vecs):
                    self._qcache[q] = v
                while len(self._qcache) > QUERY_CACHE:
                    self._qcache.popitem(last=False)

    def _bm25(self, query: str, n: int) -> list[tuple[int, float]]:
        toks = tokenize(query)
        if not toks:
            return []
        scores = self.index.bm25.get_scores(toks)
        top = np.argsort(-scores)[:n]
        return [(int(i), float(scores[i])) for i in top if scores[i] > 0]

    def _dense(self, query: str, n: int) -> list[tuple[int, float]]:
        q = self._embed_query(query)
        n = min(n, len(self.index.chunks))
        scores, ids = self.index.faiss_index.search(q[None, :], n)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]

    def _hybrid(self, query: str, n: int) -> tuple[list[tuple[int, float]], dict, dict]:
        bm = self._bm25(query, n)
        de = self._dense(query, n)
        fused: dict[int, float] = {}
        for ranking in (bm, de):
            for r, (i, _) in enumerate(ranking):
                fused[i] = fused.get(i, 0.0) + 1.0 / (RRF_K + r + 1)
        order = sorted(fused.items(), key=lambda kv: -kv[1])
        return order, dict(bm), dict(de)

    # --- search -------------------------------------------------------------------------
    def search_chunks(self, query: str, k: int = 10, mode: str | None = None) -> list[tuple[int, float, dict]]:
        """Chunk-level ranking: (chunk index, final score, per-stage scores), best first."""
        mode = mode or self.mode
        if mode not in MODES:
            raise SahayakError(f"unknown retrieval mode {mode!r}; use one of {', '.join(MODES)}")
        n = max(CANDIDATES, k * 3, self.rerank_top_k)
        if mode == "bm25":
            return [(i, s, {"bm25": s}) for i, s in self._bm25(query, n)]
        if mode == "dense":
            return [(i, s, {"dense": s}) for i, s in self._dense(query, n)]
        order, bm, de = self._hybrid(query, n)
        stages = {i: {"bm25": bm.get(i, 0.0), "dense": de.get(i), "hybrid": s} for i, s in order}
        if mode == "hybrid":
            return [(i, s, stages[i]) for i, s in order]
        if mode == "llm":
            cand = order[: self.rerank_top_k]
            p_yes = llm_rerank(query, [self.index.chunks[i] for i, _ in cand])
            out = [(i, p + 1e-3 * s, dict(stages[i], llm=p)) for (i, s), p in zip(cand, p_yes)]
            out.sort(key=lambda t: -t[1])
            out.extend((i, -1.0 - r * 1e-6, stages[i]) for r, (i, _) in enumerate(order[self.rerank_top_k :]))
            return out
        reranker = self.reranker()
        cand = order[: self.rerank_top_k]
        # Fused with the bi-encoder's cosine of each candidate (semantics) rather than the RRF score:
        # the cross-encoder adds word-level precision to it (docs/retrieval.md, "fusion").
        cos = self.index.embeddings[[i for i, _ in cand]] @ self._embed_query(query) if cand else []
        final = reranker.rerank(query, [self.index.chunks[i] for i, _ in cand], [float(c) for c in cos])
        out = []
        for (i, _), (ce, fused) in zip(cand, final):
            st = dict(stages[i], rerank=ce)
            out.append((i, fused, st))
        out.sort(key=lambda t: -t[1])
        # candidates beyond the reranked window keep their hybrid order, below every reranked one
        floor = min((t[1] for t in out), default=0.0) - 1.0
        out.extend((i, floor - r * 1e-6, stages[i]) for r, (i, _) in enumerate(order[self.rerank_top_k :]))
        return out

    def search(self, query: str, k: int = 10, mode: str | None = None) -> list[Hit]:
        """The ``k`` best documents for ``query`` (each with its best chunk), best first."""
        hits: list[Hit] = []
        seen: set[str] = set()
        for i, score, stages in self.search_chunks(query, k, mode):
            c = self.index.chunks[i]
            if c.doc_id in seen:
                continue
            seen.add(c.doc_id)
            clean = {s: round(float(v), 6) for s, v in stages.items() if v is not None}
            hits.append(Hit(c.doc_id, c.title, c.chunk_id, c.hash, c.text, float(score), len(hits) + 1, clean))
            if len(hits) >= k:
                break
        return hits

    def reranker(self):
        """The cross-encoder for this corpus (loaded on first use; see :func:`open_knowledge_base`)."""
        if self._reranker is None:
            with self._rr_lock:  # separate lock: training calls back into search (which uses _lock)
                if self._reranker is None:
                    if self._reranker_loader is None:
                        raise SahayakError("rerank mode needs a trained reranker; none is configured")
                    self._reranker = self._reranker_loader(self.index)
        return self._reranker

    # --- answers ------------------------------------------------------------------------
    def relevance(self, query: str, hit: Hit) -> float:
        """Cosine similarity of query and the hit's chunk: the confidence the threshold is calibrated on."""
        q = self._embed_query(query)
        return float(self.index.embeddings[self._pos[hit.chunk_id]] @ q)

    def answer(self, question: str, mode: str | None = None, generate: bool | None = None) -> Answer:
        """A short answer quoted from the best passages, with citations, or "I don't know"."""
        t0 = time.perf_counter()
        mode = mode or self.mode
        hits = self.search(question, k=5, mode=mode)
        t_search = time.perf_counter() - t0
        confidence = self.relevance(question, hits[0]) if hits else 0.0
        confident = bool(hits) and confidence >= self.threshold
        generation = None
        if confident:
            text, citations = compose_answer(question, hits, self._embed_query(question), self.model)
            if self.generate if generate is None else generate:
                generation = generate_answer(question, hits)
                if generation["grounded"]:  # otherwise keep the extractive answer
                    by_id = {h.doc_id: h for h in hits}
                    text = generation["text"]
                    citations = [{"doc_id": d, "title": by_id[d].title, "chunk_id": by_id[d].chunk_id,
                                  "passage": by_id[d].text} for d in dict.fromkeys(generation["cited"])]
        else:
            text = ("I don't know the answer to that from the bank's policies. "
                    "Would you like me to connect you to a human agent?")
            citations = []
        provenance = {
            "query": question,
            "mode": mode,
            "passage_ids": [h.chunk_id for h in hits],
            "doc_ids": [h.doc_id for h in hits],
            "chunk_hashes": [h.chunk_hash for h in hits],
            "scores": [h.scores | {"final": round(h.score, 6)} for h in hits],
            "confidence": round(confidence, 6),
            "threshold": self.threshold,
            "confident": confident,
            "cited": [c["chunk_id"] for c in citations],
            "generation": generation,
            "model_versions": self.model_versions(mode),
            "index": {"path": str(self.index.path), "corpus_fingerprint": self.index.meta["corpus"]["fingerprint"],
                      "created": self.index.meta.get("created")},
            "latency_ms": {"search": round(t_search * 1000, 2),
                           "total": round((time.perf_counter() - t0) * 1000, 2)},
        }
        return Answer(text=text, citations=citations, confident=confident, provenance=provenance)

    def model_versions(self, mode: str | None = None) -> dict[str, str]:
        out = {"embedding": self.index.meta.get("embedding_model", ""), "bm25": "rank-bm25 BM25Okapi"}
        if (mode or self.mode) == "rerank" and self._reranker is not None:
            out["reranker"] = self._reranker.version
        if (mode or self.mode) == "llm" or self.generate:
            out["llm"] = llm_model_version()
        return out


def _read_calibration(index_dir: Path) -> dict:
    try:
        return json.loads((Path(index_dir) / "calibration.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def write_calibration(index_dir: str | Path, data: dict) -> None:
    (Path(index_dir) / "calibration.json").write_text(json.dumps(data, indent=1), encoding="utf-8")


def open_knowledge_base(index_dir: str | Path, *, mode: str = "hybrid", rerank_top_k: int = 20,
                        threshold: float | None = None, models_dir: str | Path | None = None,
                        reranker_config: Any = None, generate: bool = False,
                        train_reranker: bool = True) -> KnowledgeBase:
    """Load the index at ``index_dir`` as a :class:`KnowledgeBase`. The reranker is loaded on first use
    and, with ``train_reranker`` (evaluation, ``sahayak prepare``), trained then if the corpus has none."""
    idx = load_index(index_dir)
    kb = KnowledgeBase(idx, mode=mode, rerank_top_k=rerank_top_k, threshold=threshold, generate=generate)

    def first_stage(queries: list[str], n: int) -> list[list[tuple[int, float]]]:
        kb.prime_queries(queries)
        return [kb._hybrid(q, n)[0][:n] for q in queries]

    def embed_queries(queries: list[str]) -> np.ndarray:
        kb.prime_queries(queries)
        return np.stack([kb._embed_query(q) for q in queries]) if queries else np.zeros((0, 0), dtype="float32")

    def loader(index: LoadedIndex):
        return reranker_for_index(index, models_dir=models_dir, config=reranker_config or RerankerConfig(),
                                  first_stage=first_stage, embed_queries=embed_queries, top_k=rerank_top_k,
                                  train=train_reranker)

    kb._reranker_loader = loader
    return kb
