"""The redaction contract shared by every layer that stores text.

``privacy.redact.redact`` is the implementation; stores below it (the provenance log) receive it
as a :data:`Redactor` from the composition root instead of importing the privacy package. A store
given no redactor withholds text entirely (hash only): an unredacted audit log would be worse than
a less readable one.
"""

from __future__ import annotations

import hashlib
from typing import Any, Callable

Redactor = Callable[[str], str]


def map_strings(obj: Any, fn: Redactor) -> Any:
    """Apply ``fn`` to every string inside nested dicts, lists, tuples and sets (keys are kept)."""
    if isinstance(obj, str):
        return fn(obj)
    if isinstance(obj, dict):
        return {k: map_strings(v, fn) for k, v in obj.items()}
    if isinstance(obj, list):
        return [map_strings(v, fn) for v in obj]
    if isinstance(obj, tuple):
        return tuple(map_strings(v, fn) for v in obj)
    if isinstance(obj, (set, frozenset)):
        return type(obj)(map_strings(v, fn) for v in obj)
    return obj


def withhold(text: str) -> str:
    """The text replaced by a short hash: what a store writes when it has no redactor."""
    return f"[withheld: redaction unavailable sha256={hashlib.sha256(text.encode('utf-8')).hexdigest()[:16]}]"
