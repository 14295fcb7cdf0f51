"""The product's knowledge base: :func:`prepare_knowledge_base` builds it, :func:`get_knowledge_base` loads it.

``sahayak prepare`` (and ``sahayak kb index``) build the index under ``settings.index_dir``
(incrementally), calibrate its refusal threshold once on the dev questions and, in ``rerank`` mode,
train the corpus's cross-encoder. The getter only loads what was prepared: a customer's turn never
waits for indexing or training.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from app.core.errors import NotPrepared
from app.core.settings import Settings, get_settings
from retrieval.evaluate import calibrate_threshold, load_queries
from retrieval.index import build_index, index_is_current
from retrieval.kb import KnowledgeBase, open_knowledge_base, write_calibration

log = logging.getLogger(__name__)

_KB: KnowledgeBase | None = None
_KB_KEY: tuple | None = None
_KB_LOCK = threading.Lock()
_PREPARE = "run `sahayak prepare` (or `sahayak kb index`)"


def _open(s: Settings, *, train_reranker: bool) -> KnowledgeBase:
    return open_knowledge_base(s.index_dir, mode=s.retrieval_mode, rerank_top_k=s.rerank_top_k,
                               threshold=s.answer_threshold, models_dir=s.models_dir,
                               generate=s.answer_generation, train_reranker=train_reranker)


def prepare_knowledge_base(settings: Settings | None = None, *, progress: bool = True) -> str:
    """Build (incrementally, only when the corpus changed) and calibrate the index; in ``rerank``
    mode also train the reranker. Idempotent and quick when everything is current. Returns a summary."""
    s = settings or get_settings()
    built = not index_is_current(s.index_dir, s.kb_dir)
    if built:
        build_index(s.kb_dir, s.index_dir, progress=progress)
    kb = _open(s, train_reranker=True)
    if not kb.calibration:
        auto_calibrate(kb, Path(s.kb_dir).parent / "kb_eval")
    if s.retrieval_mode == "rerank":
        kb.reranker()
    reset_knowledge_base()  # a process-wide copy of the old index is stale now
    return f"knowledge base index at {s.index_dir} ({'built' if built else 'current'}, mode {s.retrieval_mode})"


def get_knowledge_base(settings: Settings | None = None) -> KnowledgeBase:
    """The process-wide knowledge base, loaded once from ``settings.index_dir`` (built by
    :func:`prepare_knowledge_base`). Raises :class:`NotPrepared` when there is no index; an index
    older than the corpus is served with a warning (it is what was prepared)."""
    global _KB, _KB_KEY
    s = settings or get_settings()
    key = (str(s.kb_dir), str(s.index_dir), s.retrieval_mode, s.rerank_top_k, s.answer_threshold,
           s.answer_generation)
    with _KB_LOCK:
        if _KB is not None and _KB_KEY == key:
            return _KB
        if not (Path(s.index_dir) / "meta.json").exists():
            raise NotPrepared(f"no knowledge-base index at {s.index_dir}: {_PREPARE}")
        if not index_is_current(s.index_dir, s.kb_dir):
            log.warning("the knowledge-base index at %s is older than %s; %s to refresh it", s.index_dir, s.kb_dir, _PREPARE)
        _KB = _open(s, train_reranker=False)
        _KB_KEY = key
        return _KB


def auto_calibrate(kb: KnowledgeBase, eval_dir: Path) -> None:
    """Calibrate the refusal threshold on the dev half stored next to the KB (``dev.jsonl`` +
    ``unanswerable.jsonl`` with ``split: dev``), once per index; no-op when those files are absent."""
    dev, unk = eval_dir / "dev.jsonl", eval_dir / "unanswerable.jsonl"
    if not (dev.exists() and unk.exists()):
        return
    pos = [q["query"] for q in load_queries(dev) if set(q["relevant"]) <= kb.index.doc_ids]
    neg = [q["query"] for q in load_queries(unk) if q.get("split", "dev") == "dev"]
    if not pos or not neg:
        return
    result = calibrate_threshold(kb, pos, neg, mode="hybrid")
    write_calibration(kb.index.path, result)
    kb.calibration = result
    if kb._threshold_override is None:
        kb.threshold = result["threshold"]


def reset_knowledge_base() -> None:
    """Forget the process-wide knowledge base (tests, or after re-indexing)."""
    global _KB, _KB_KEY
    with _KB_LOCK:
        _KB, _KB_KEY = None, None
