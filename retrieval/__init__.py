"""Retrieval over the bank's policy knowledge base: chunking, FAISS + BM25 + hybrid search,
a corpus-trained cross-encoder reranker, and cited answers.

Public API: :func:`get_knowledge_base` → :class:`KnowledgeBase` with ``search`` and ``answer``.
Heavy libraries (faiss, torch) are imported only when an index is built or loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from retrieval.kb import Answer, Hit, KnowledgeBase

__all__ = ["get_knowledge_base", "reset_knowledge_base", "KnowledgeBase", "Answer", "Hit"]


def get_knowledge_base(settings=None) -> "KnowledgeBase":
    """The process-wide :class:`KnowledgeBase` (builds or loads the index under ``settings.index_dir``)."""
    from retrieval.kb import get_knowledge_base as _get

    return _get(settings)


def reset_knowledge_base() -> None:
    from retrieval.kb import reset_knowledge_base as _reset

    _reset()


def __getattr__(name: str):
    if name in {"KnowledgeBase", "Answer", "Hit"}:
        import retrieval.kb as kb

        return getattr(kb, name)
    raise AttributeError(name)
