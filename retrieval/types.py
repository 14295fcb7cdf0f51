"""What retrieval returns: search hits and cited answers (shared by kb, answer, llm and evaluate)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Hit:
    """One search result (the best chunk of one document)."""

    doc_id: str
    title: str
    chunk_id: str
    chunk_hash: str
    text: str
    score: float
    rank: int = 0
    scores: dict[str, float] = field(default_factory=dict)  # per stage: bm25, dense, hybrid, rerank

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Answer:
    """A cited answer (or a refusal when the knowledge base has nothing relevant)."""

    text: str
    citations: list[dict[str, str]]
    confident: bool
    provenance: dict[str, Any]
