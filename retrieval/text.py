"""Text utilities shared by indexing, BM25 and answer composition.

Markdown is flattened to plain sentences so that passages can be quoted: a table row
becomes "Metro: Required average ₹10,000; Monthly charge ₹400." so the numbers keep
their labels when a single row is cited.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[\w₹]+(?:[.,]\d+)*", re.UNICODE)
_SENT_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9₹\"'(])")

STOPWORDS = frozenset(
    """a an the and or but if of to in on at by for with from as is are was were be been being am
    do does did doing have has had having i me my mine we our ours you your yours he she it its they
    them their this that these those there here what which who whom whose when where why how can could
    should would will shall may might must about into over under than then so such not no nor too very
    just also any all each some more most other own same only up down out off again once s t
    please tell know want need get let like""".split()
)


def _stem(word: str) -> str:
    """A deliberately small suffix stripper: enough to match plural/verb forms (blocked ~ block)."""
    if len(word) <= 3 or not word.isalpha():
        return word
    for suffix, repl in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix == "es" and not word.endswith(("ses", "xes", "zes", "ches", "shes")):
                return word[:-1]
            if suffix == "s" and word.endswith("ss"):
                return word
            return word[: -len(suffix)] + repl
    return word


def tokenize(text: str) -> list[str]:
    """Lower-cased, stop-word-free, lightly stemmed tokens for BM25."""
    out = []
    for tok in _WORD.findall(text.lower()):
        tok = tok.replace(",", "")
        if tok in STOPWORDS:
            continue
        out.append(_stem(tok))
    return out


def _table_to_sentences(lines: list[str]) -> list[str]:
    rows = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in lines]
    rows = [r for r in rows if not all(re.fullmatch(r":?-{2,}:?", c or "--") for c in r)]
    if not rows:
        return []
    header, body = rows[0], rows[1:]
    sentences = []
    for r in body:
        if not r or not r[0]:
            continue
        parts = [f"{h} {v}".strip() for h, v in zip(header[1:], r[1:]) if v]
        sentences.append(f"{r[0]}: " + "; ".join(parts) + ".")
    return sentences


def markdown_to_paragraphs(md: str) -> list[str]:
    """Plain-text paragraphs of a Markdown body (headings dropped, lists and tables flattened)."""
    paragraphs: list[str] = []
    buf: list[str] = []
    table: list[str] = []

    def flush() -> None:
        if buf:
            paragraphs.append(" ".join(buf).strip())
            buf.clear()
        if table:
            paragraphs.append(" ".join(_table_to_sentences(table)))
            table.clear()

    for raw in md.splitlines():
        line = raw.strip()
        if line.startswith("|"):
            if buf:
                paragraphs.append(" ".join(buf).strip())
                buf.clear()
            table.append(line)
            continue
        if table:
            flush()
        if not line:
            flush()
            continue
        if line.startswith("#"):
            flush()
            continue
        line = re.sub(r"^([-*]|\d+\.)\s+", "", line)
        line = re.sub(r"\*\*(.+?)\*\*", r"\1", line)
        if raw.lstrip().startswith(("-", "*")) or re.match(r"^\d+\.", raw.strip()):
            # each list item is its own sentence
            if line and line[-1] not in ".!?:":
                line += "."
        buf.append(line)
    flush()
    return [p for p in paragraphs if p]


def split_sentences(text: str) -> list[str]:
    """Split plain text into sentences (abbreviation-light heuristics are enough for policy text)."""
    return [s.strip() for s in _SENT_SPLIT.split(text) if s.strip()]
