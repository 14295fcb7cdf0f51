"""Turning staff/user feedback into training data (the improvement loop).

A feedback row (bank table ``feedback``) carries the redacted ``text``, the
``predicted_intent`` and, when someone corrected it, the ``correct_intent``. Rows whose
correction differs from the prediction become YAML training examples that can be reviewed
and merged into ``data/intents/`` (or passed to ``sahayak intents train --data``).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml


def misclassified(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Texts grouped by their corrected intent, for rows where the correction differs from the prediction.

    Duplicates (same text, same intent) are kept once; the order of first appearance is kept.
    """
    out: dict[str, list[str]] = {}
    seen: set[tuple[str, str]] = set()
    for r in rows:
        text = (r.get("text") or "").strip()
        correct = (r.get("correct_intent") or "").strip()
        if not text or not correct or correct == (r.get("predicted_intent") or "").strip():
            continue
        if (correct, text) in seen:
            continue
        seen.add((correct, text))
        out.setdefault(correct, []).append(text)
    return out


def feedback_document(rows: Iterable[Mapping[str, Any]], *, include_unlabelled: bool = False) -> dict[str, Any]:
    """The YAML document (a multi-intent training file) for ``rows``."""
    rows = list(rows)
    groups = misclassified(rows)
    doc: dict[str, Any] = {
        "source": "sahayak intents export-feedback",
        "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "intents": [
            {"intent": intent, "description": "", "examples": texts} for intent, texts in sorted(groups.items())
        ],
    }
    if include_unlabelled:
        doc["needs_review"] = [
            {"text": r.get("text"), "predicted_intent": r.get("predicted_intent")}
            for r in rows if (r.get("rating") == -1 and not r.get("correct_intent") and r.get("text"))
        ]
    return doc


def export_feedback_yaml(rows: Iterable[Mapping[str, Any]], out: str | Path, *, include_unlabelled: bool = False) -> dict[str, Any]:
    """Write the training YAML for ``rows`` to ``out``; return a summary (counts per intent)."""
    doc = feedback_document(rows, include_unlabelled=include_unlabelled)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return {"out": str(out), "examples": sum(len(i["examples"]) for i in doc["intents"]),
            "per_intent": {i["intent"]: len(i["examples"]) for i in doc["intents"]}}
