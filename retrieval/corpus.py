"""Loading a corpus: a folder of Markdown files with front matter, or a CSV with ``id`` and ``text``."""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from app.core.errors import SahayakError


@dataclass(frozen=True)
class Document:
    """One knowledge-base document."""

    doc_id: str
    title: str
    text: str  # the body (Markdown for .md files, plain text for CSV rows)
    category: str = ""
    effective_date: str = ""
    source: str = ""  # file name (Markdown) or "file.csv#row"
    sha256: str = ""
    meta: dict = field(default_factory=dict, compare=False)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def parse_markdown(path: Path) -> Document:
    """Parse one Markdown file with a ``---`` YAML front matter (id, title, category, effective_date)."""
    raw = path.read_text(encoding="utf-8")
    meta: dict = {}
    body = raw
    if raw.startswith("---"):
        parts = raw.split("---", 2)
        if len(parts) == 3:
            meta = yaml.safe_load(parts[1]) or {}
            body = parts[2]
    doc_id = str(meta.get("id") or path.stem)
    title = str(meta.get("title") or doc_id)
    return Document(
        doc_id=doc_id,
        title=title,
        text=body.strip(),
        category=str(meta.get("category", "")),
        effective_date=str(meta.get("effective_date", "")),
        source=path.name,
        sha256=sha256_text(raw),
        meta=meta,
    )


def load_corpus(path: str | Path) -> list[Document]:
    """Every document of a corpus (folder of ``*.md`` or a CSV with ``id``/``text`` columns), sorted by id."""
    p = Path(path)
    if not p.exists():
        raise SahayakError(f"corpus {p} does not exist")
    docs: list[Document] = []
    if p.is_dir():
        files = sorted(p.glob("*.md"))
        if not files:
            raise SahayakError(f"corpus folder {p} has no .md files")
        docs = [parse_markdown(f) for f in files]
    elif p.suffix.lower() == ".csv":
        with p.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            cols = set(reader.fieldnames or [])
            if not {"id", "text"} <= cols:
                raise SahayakError(f"CSV corpus {p} needs 'id' and 'text' columns (has {sorted(cols)})")
            for i, row in enumerate(reader):
                text = (row.get("text") or "").strip()
                if not text:
                    continue
                title = (row.get("title") or "").strip()
                docs.append(Document(doc_id=str(row["id"]).strip(), title=title, text=text,
                                     category=(row.get("category") or "").strip(),
                                     source=f"{p.name}#{i + 1}", sha256=sha256_text(title + "\n" + text)))
    elif p.suffix.lower() == ".md":
        docs = [parse_markdown(p)]
    else:
        raise SahayakError(f"corpus {p} must be a folder of Markdown files or a .csv file")
    seen: set[str] = set()
    for d in docs:
        if d.doc_id in seen:
            raise SahayakError(f"duplicate document id {d.doc_id!r} in {p}")
        seen.add(d.doc_id)
    return sorted(docs, key=lambda d: d.doc_id)
