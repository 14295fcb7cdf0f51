"""Retrieval over the bank's policy knowledge base: chunking, FAISS + BM25 + hybrid search,
a corpus-trained cross-encoder reranker, and cited answers.

Public API: :func:`get_knowledge_base` → :class:`KnowledgeBase` with ``search`` and ``answer``.
Heavy libraries (faiss, torch) are imported only when an index is built or loaded.
"""

from retrieval.kb import KnowledgeBase
from retrieval.prepare import get_knowledge_base, reset_knowledge_base
from retrieval.types import Answer, Hit

__all__ = ["get_knowledge_base", "reset_knowledge_base", "KnowledgeBase", "Answer", "Hit"]
