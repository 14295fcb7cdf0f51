"""Retrieval over the bank's policy knowledge base: chunking, FAISS + BM25 + hybrid search,
a corpus-trained cross-encoder reranker, and cited answers.

Public API: :func:`prepare_knowledge_base` builds the index (``sahayak prepare``);
:func:`get_knowledge_base` loads it → :class:`KnowledgeBase` with ``search`` and ``answer``.
Heavy libraries (faiss, torch) are imported only when an index is built or loaded.
"""

from retrieval.kb import KnowledgeBase
from retrieval.prepare import get_knowledge_base, prepare_knowledge_base, reset_knowledge_base
from retrieval.types import Answer, Hit

__all__ = ["get_knowledge_base", "prepare_knowledge_base", "reset_knowledge_base", "KnowledgeBase", "Answer", "Hit"]
