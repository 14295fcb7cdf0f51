"""A bank loads its own documents: Markdown, HTML, PDF and CSV of Q/A pairs → the KB's Markdown corpus.

Each source becomes one Markdown document (a CSV: one per row) with a front matter that keeps its
title, its URL (for citations) and the SHA-256 of the source, so re-importing rewrites only what
changed and the index then re-embeds only the changed documents. Tables stay Markdown tables
(HTML tables become them), which the chunker turns into one sentence per row that carries the
column headers, so no row is separated from what its numbers mean. What cannot be imported is skipped with a reason;
nothing is silently dropped.
"""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Callable, Iterable

import yaml

from retrieval.corpus import parse_markdown

SUFFIXES = {".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html", ".pdf": "pdf", ".csv": "csv"}
QUESTION_COLUMNS = ("question", "q", "title")
ANSWER_COLUMNS = ("answer", "a", "text", "body")


@dataclass
class ImportReport:
    """What an import did: documents written (new or changed), unchanged, and skipped with reasons."""

    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (source, why)

    def to_dict(self) -> dict:
        return {"written": self.written, "unchanged": self.unchanged,
                "skipped": [{"source": s, "reason": r} for s, r in self.skipped]}


@dataclass(frozen=True)
class _Doc:
    doc_id: str
    title: str
    body: str
    source: str
    url: str = ""


def slug(text: str) -> str:
    """A document id from a title or file name: lower-case ASCII words joined by hyphens."""
    words = re.findall(r"[a-z0-9]+", text.lower())
    return "-".join(words)[:80] or "document"


class _HTMLText(HTMLParser):
    """Title, headings, paragraphs, list items and tables of an HTML page as Markdown (scripts, styles
    and navigation dropped)."""

    SKIP = {"script", "style", "nav", "header", "footer", "noscript", "form"}
    BLOCKS = {"p", "div", "section", "article", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table", "dd", "dt"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title = ""
        self.h1 = ""
        self.lines: list[str] = []
        self._buf: list[str] = []
        self._skip = 0
        self._in_title = False
        self._tag_stack: list[str] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._table_rows = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in self.SKIP:
            self._skip += 1
        elif tag == "title":
            self._in_title = True
        elif tag == "tr":
            self._flush()
            self._row = []
        elif tag in {"td", "th"} and self._row is not None:
            self._cell = []
        elif tag in self.BLOCKS:
            self._flush()
        if tag in {"h1", "h2", "h3", "h4", "h5", "h6", "li"}:
            self._tag_stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag == "title":
            self._in_title = False
        elif tag in {"td", "th"} and self._row is not None and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()).replace("|", "/"))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if any(self._row):
                self.lines.append("| " + " | ".join(self._row) + " |")
                if self._table_rows == 0:
                    self.lines.append("|" + "---|" * len(self._row))
                self._table_rows += 1
            self._row = None
        elif tag == "table":
            self._table_rows = 0
            self.lines.append("")
        elif tag in self.BLOCKS:
            self._flush(tag)

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._in_title:
            self.title += data
        elif self._cell is not None:
            self._cell.append(data)
        else:
            self._buf.append(data)

    def _flush(self, tag: str = "") -> None:
        text = " ".join("".join(self._buf).split())
        self._buf.clear()
        if not text:
            return
        kind = self._tag_stack.pop() if self._tag_stack and tag == self._tag_stack[-1] else ""
        if kind == "h1" and not self.h1:
            self.h1 = text
        if kind.startswith("h"):
            self.lines += ["", "#" * int(kind[1]) + " " + text, ""]
        elif kind == "li":
            self.lines.append("- " + text)
        else:
            self.lines += [text, ""]

    def markdown(self) -> str:
        self._flush()
        return re.sub(r"\n{3,}", "\n\n", "\n".join(self.lines)).strip()


def _read_markdown(path: Path) -> Iterable[_Doc]:
    doc = parse_markdown(path)  # the corpus's own front-matter reader
    title = str(doc.meta.get("title") or next((ln[2:].strip() for ln in doc.text.splitlines() if ln.startswith("# ")),
                                              path.stem))
    yield _Doc(str(doc.meta.get("id") or slug(path.stem)), title, doc.text, path.name, str(doc.meta.get("url") or ""))


def _read_html(path: Path) -> Iterable[_Doc]:
    parser = _HTMLText()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    body = parser.markdown()
    title = " ".join((parser.title or parser.h1 or path.stem).split())
    yield _Doc(slug(path.stem), title, body, path.name)


def _read_pdf(path: Path) -> Iterable[_Doc]:
    from pypdf import PdfReader  # heavy-ish (~0.1 s) and only `kb import` reads PDFs

    reader = PdfReader(str(path))
    if reader.is_encrypted:
        raise ValueError("the PDF is encrypted")
    pages = [(page.extract_text() or "").strip() for page in reader.pages]
    meta_title = str((reader.metadata or {}).get("/Title") or "").strip()
    title = meta_title or next((ln.strip() for p in pages for ln in p.splitlines() if ln.strip()), path.stem)
    yield _Doc(slug(path.stem), title, "\n\n".join(p for p in pages if p), path.name)


def _column(header: list[str], names: tuple[str, ...]) -> str | None:
    lowered = {h.strip().lower(): h for h in header}
    return next((lowered[n] for n in names if n in lowered), None)


def _read_csv(path: Path) -> Iterable[_Doc]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        q, a = _column(header, QUESTION_COLUMNS), _column(header, ANSWER_COLUMNS)
        if q is None or a is None:
            raise ValueError(f"a Q/A CSV needs a question and an answer column (found: {', '.join(header) or 'none'})")
        url = _column(header, ("url", "link", "source_url"))
        for i, row in enumerate(reader, start=2):  # line numbers as a spreadsheet shows them
            question, answer = (row.get(q) or "").strip(), (row.get(a) or "").strip()
            if not question or not answer:
                yield _Doc("", "", "", f"{path.name}#line{i}")  # reported as skipped by the caller
                continue
            yield _Doc(f"{slug(path.stem)}-{slug(question)[:60]}", question, answer, f"{path.name}#line{i}",
                       (row.get(url) or "").strip() if url else "")


READERS: dict[str, Callable[[Path], Iterable[_Doc]]] = {
    "markdown": _read_markdown, "html": _read_html, "pdf": _read_pdf, "csv": _read_csv}


def _files(paths: Iterable[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        out += sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    return out


def _front_matter(doc: _Doc, source_sha: str) -> str:
    meta = {"id": doc.doc_id, "title": doc.title, "source": doc.source, "source_sha256": source_sha}
    if doc.url:
        meta["url"] = doc.url
    return "---\n" + yaml.safe_dump(meta, allow_unicode=True, sort_keys=False) + "---\n\n"


def import_documents(paths: Iterable[str | Path], into: str | Path, *,
                     progress: Callable[[Iterable[Path]], Iterable[Path]] | None = None) -> ImportReport:
    """Convert every source under ``paths`` into a Markdown document in ``into`` (a KB corpus folder).

    A document whose source is unchanged (same SHA-256) is left as it is, so the index re-embeds
    only what changed. Returns what was written, left unchanged and skipped (with the reason)."""
    into = Path(into)
    into.mkdir(parents=True, exist_ok=True)
    report = ImportReport()
    seen: dict[str, str] = {}
    files = _files(Path(p) for p in paths)
    for path in (progress(files) if progress else files):
        kind = SUFFIXES.get(path.suffix.lower())
        if kind is None:
            report.skipped.append((str(path), f"unsupported file type {path.suffix or '(none)'} "
                                              "(Markdown, HTML, PDF or a Q/A CSV)"))
            continue
        if not path.exists():
            report.skipped.append((str(path), "no such file"))
            continue
        raw = path.read_bytes()
        try:
            docs = list(READERS[kind](path))
        except Exception as exc:  # noqa: BLE001 - a broken source is reported, the others still import
            report.skipped.append((str(path), f"could not read it: {type(exc).__name__}: {exc}"))
            continue
        for doc in docs:
            if not doc.doc_id or len(doc.body.split()) < 3:
                report.skipped.append((doc.source if "#" in doc.source else str(path), "no text to index"))
                continue
            if doc.doc_id in seen:
                report.skipped.append((doc.source, f"same document id {doc.doc_id!r} as {seen[doc.doc_id]}"))
                continue
            seen[doc.doc_id] = doc.source
            # A CSV row's own text is its source: one changed row rewrites one document.
            sha = hashlib.sha256(raw if "#" not in doc.source else (doc.title + "\n" + doc.body).encode()).hexdigest()
            target = into / f"{doc.doc_id}.md"
            if target.exists() and f"source_sha256: {sha}" in target.read_text(encoding="utf-8")[:2000]:
                report.unchanged.append(doc.doc_id)
                continue
            body = doc.body if doc.body.lstrip().startswith("# ") else f"# {doc.title}\n\n{doc.body}"
            target.write_text(_front_matter(doc, sha) + body + "\n", encoding="utf-8")
            report.written.append(doc.doc_id)
    return report
