"""Splitting documents into overlapping, titled passages."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from retrieval.corpus import Document, sha256_text
from retrieval.text import markdown_to_paragraphs, split_sentences


@dataclass(frozen=True)
class Chunk:
    """One passage: the unit that is embedded, BM25-indexed, reranked and cited."""

    chunk_id: str  # "<doc_id>#<n>"
    doc_id: str
    title: str
    text: str  # plain text of the passage (quotable)
    hash: str  # sha256 of the text that is embedded (title + passage)

    @property
    def embed_text(self) -> str:
        return f"{self.title}. {self.text}" if self.title else self.text

    def to_dict(self) -> dict:
        return asdict(self)


def chunk_document(doc: Document, max_words: int = 110, overlap_words: int = 30) -> list[Chunk]:
    """Sentence-aligned windows of about ``max_words`` words, each sharing ~``overlap_words`` with the previous.

    Windows never cut a sentence, so every quoted passage reads as whole sentences.
    """
    sentences: list[str] = []
    for para in markdown_to_paragraphs(doc.text):
        sentences.extend(split_sentences(para))
    if not sentences:
        sentences = [doc.text.strip() or doc.title]
    chunks: list[list[str]] = []
    start = 0
    while start < len(sentences):
        words, end = 0, start
        while end < len(sentences) and (words == 0 or words + len(sentences[end].split()) <= max_words):
            words += len(sentences[end].split())
            end += 1
        chunks.append(sentences[start:end])
        if end >= len(sentences):
            break
        # step back over trailing sentences to create the overlap, but always advance
        back, nxt = 0, end
        while nxt - 1 > start + 0 and back + len(sentences[nxt - 1].split()) <= overlap_words:
            nxt -= 1
            back += len(sentences[nxt].split())
        start = max(nxt, start + 1)
    out = []
    for i, sents in enumerate(chunks):
        text = " ".join(sents)
        c = Chunk(chunk_id=f"{doc.doc_id}#{i}", doc_id=doc.doc_id, title=doc.title, text=text, hash="")
        out.append(Chunk(c.chunk_id, c.doc_id, c.title, c.text, sha256_text(c.embed_text)))
    return out
