"""Turn a TurnResult into what the chat shows: pipeline steps, citations, scoring summary.

Pure functions (no Chainlit import) so they are unit-tested without a browser.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Markdown that would turn echoed text into live content: links, images, autolinks, raw HTML.
_LINK_PUNCT = re.compile(r"([\\\[\]<>`])")  # "![" is no image once "[" is escaped
# Bare URLs and www. names: remark-gfm links them even when their punctuation is escaped.
_BARE_URL = re.compile(r"(?i)\b(?:[a-z][a-z0-9+.-]*://|www\.)\S+")

STATE_LABELS = {
    "awaiting_slot": "waiting for a detail from you",
    "awaiting_confirmation": "waiting for your confirmation",
    "awaiting_otp": "waiting for the one-time code",
    "awaiting_clarification": "asking you to clarify",
    "done": "done",
}


def safe_markdown(text: str) -> str:
    """``text`` with every link, image, autolink and HTML construct made inert, other markdown kept.

    The bot's replies repeat what customers type (a payee called ``![x](http://evil/x.png)``);
    Chainlit renders replies as markdown, so such a value would show as the bot's own link or
    fetch an image. Brackets, ``<``, ``>``, backticks and backslashes are escaped, and
    bare URLs become code spans (shown, not linked).
    """
    out: list[str] = []
    last = 0
    for m in _BARE_URL.finditer(text):
        out.append(_LINK_PUNCT.sub(r"\\\1", text[last:m.start()]))
        url = m.group(0).replace("`", "'")
        out.append(f"`{url}`")
        last = m.end()
    out.append(_LINK_PUNCT.sub(r"\\\1", text[last:]))
    return "".join(out)


def _json(obj: Any) -> str:
    return "```json\n" + json.dumps(obj, ensure_ascii=False, indent=2, default=str) + "\n```"


def citations_of(result: Any) -> list[dict[str, str]]:
    """Cited passages as ``{doc_id, title, text}`` (one per chunk, in citation order)."""
    data = getattr(result, "data", None) or {}
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    for c in data.get("citations") or []:
        doc_id = str(c.get("doc_id") or "source")
        key = f"{doc_id}#{c.get('chunk_id', '')}"
        if key in seen:
            continue
        seen.add(key)
        title = str(c.get("title") or doc_id)
        passage = str(c.get("passage") or "")
        out.append({"doc_id": doc_id, "title": title, "text": f"{title}\n\n{passage}".strip()})
    return out


def scoring_of(result: Any) -> dict[str, Any] | None:
    """The encrypted-scoring facts of a loan turn, or None when no scoring happened."""
    data = getattr(result, "data", None) or {}
    if not data.get("scoring_request_id") and not data.get("scoring"):
        return None
    info: dict[str, Any] = {"request_id": data.get("scoring_request_id")}
    scoring = data.get("scoring")
    if isinstance(scoring, dict):
        info.update({k: v for k, v in scoring.items() if k not in {"features", "raw"}})
    if data.get("scoring_timings"):
        info["timings_ms"] = data["scoring_timings"]
    return info


def _ranked_passages(retrieval: dict[str, Any]) -> list[dict[str, Any]]:
    """Retrieved passages with their final scores, from either provenance shape
    (``passages: [{chunk_id, doc_id, score}]`` or parallel ``passage_ids``/``doc_ids``/``scores`` lists)."""
    if retrieval.get("passages"):
        return [p for p in retrieval["passages"] if isinstance(p, dict)]
    ids = retrieval.get("passage_ids") or []
    docs = retrieval.get("doc_ids") or [None] * len(ids)
    scores = retrieval.get("scores") or [{}] * len(ids)
    out = []
    for cid, doc, sc in zip(ids, docs, scores):
        final = sc.get("final") if isinstance(sc, dict) else sc
        out.append({"chunk_id": cid, "doc_id": doc, "score": final})
    return out


def step_outputs(result: Any) -> list[tuple[str, str]]:
    """(step name, markdown body) for each pipeline stage the turn went through."""
    steps: list[tuple[str, str]] = []
    conf = float(getattr(result, "confidence", 0.0) or 0.0)
    task = getattr(result, "task", None) or result.intent
    act = getattr(result, "dialogue_act", None)
    understanding = f"**Task:** `{task}` — confidence **{conf:.0%}**"
    if act:
        understanding += f" · **what the message did:** `{act}`"
    language = getattr(result, "language", None)
    if language and language != "en":
        understanding += f" · **language:** {language}"
    if result.entities:
        understanding += "\n\n**Details found in your message:**\n" + _json(result.entities)
    else:
        understanding += "\n\nNo details (amounts, names, card digits…) found in your message."
    steps.append(("Understanding", understanding))

    handled = f"**Handler:** `{result.handler or 'none'}` · **state:** {STATE_LABELS.get(result.state, result.state)}"
    handled += f" · **outcome:** {result.outcome}"
    timings = getattr(result, "timings_ms", None) or {}
    if timings.get("total") is not None:
        handled += f"\n\nAnswered in {timings['total']:.0f} ms."
    steps.append(("Handler", handled))

    retrieval = (result.data or {}).get("retrieval") or {}
    cites = citations_of(result)
    if retrieval or cites:
        steps.append(("Retrieval", _retrieval_step(retrieval, cites)))

    scoring = scoring_of(result)
    if scoring:
        body = ("Your details were encrypted on the bank's side (CKKS homomorphic encryption); the scoring "
                "service computed on ciphertext only and never saw them.\n\n" + _json(scoring))
        steps.append(("Encrypted scoring", body))
    return steps


def _retrieval_step(retrieval: dict[str, Any], cites: list[dict[str, str]]) -> str:
    """Markdown of the retrieval stage: search mode, top passages with scores, confidence, cited text."""
    lines = []
    if retrieval.get("mode"):
        lines.append(f"**Search:** {retrieval['mode']}")
    for p in _ranked_passages(retrieval)[:5]:
        score = p.get("score")
        score_txt = f" (score {score:.3f})" if isinstance(score, (int, float)) else ""
        lines.append(f"- `{p.get('chunk_id') or p.get('doc_id') or '?'}`{score_txt}")
    if isinstance(retrieval.get("confidence"), (int, float)):
        lines.append(f"Answer confidence {retrieval['confidence']:.2f} (threshold {retrieval.get('threshold', '?')})")
    if cites:
        lines.append("**Cited passages:**")
        for c in cites:
            quoted = "\n".join("> " + ln for ln in c["text"].splitlines() if ln.strip())
            lines.append(f"`{c['doc_id']}`\n{quoted}")
    return "\n\n".join(lines) or "No passages."
