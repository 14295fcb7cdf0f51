"""The process-wide knowledge base: the index under ``settings.index_dir`` built (incrementally)
when the corpus changed, loaded, and its refusal threshold calibrated once on the dev questions."""

from __future__ import annotations

import threading
from pathlib import Path

from app.core.settings import Settings, get_settings
from retrieval.evaluate import calibrate_threshold, load_queries
from retrieval.index import build_index, index_is_current
from retrieval.kb import KnowledgeBase, open_knowledge_base, write_calibration

_KB: KnowledgeBase | None = None
_KB_KEY: tuple | None = None
_KB_LOCK = threading.Lock()


def get_knowledge_base(settings: Settings | None = None) -> KnowledgeBase:
    """The process-wide knowledge base: builds (incrementally) or loads ``settings.index_dir`` on first use."""
    global _KB, _KB_KEY
    s = settings or get_settings()
    key = (str(s.kb_dir), str(s.index_dir), s.retrieval_mode, s.rerank_top_k, s.answer_threshold,
           s.answer_generation)
    with _KB_LOCK:
        if _KB is not None and _KB_KEY == key:
            return _KB
        if not index_is_current(s.index_dir, s.kb_dir):
            build_index(s.kb_dir, s.index_dir, progress=True)
        _KB = open_knowledge_base(s.index_dir, mode=s.retrieval_mode, rerank_top_k=s.rerank_top_k,
                                  threshold=s.answer_threshold, models_dir=s.models_dir,
                                  generate=s.answer_generation)
        if not _KB.calibration:
            auto_calibrate(_KB, Path(s.kb_dir).parent / "kb_eval")
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
