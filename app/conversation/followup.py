"""Follow-ups: short questions that only make sense after the previous answer.

"and for RTGS?" after an answer about NEFT timings asks about RTGS timings; "can I do it online?"
after an answer about opening an account asks about opening one online. The retrieval query is
rewritten from the conversation: a sibling term swaps in for the one the last question used
(``data/lexicon/followup_groups.yaml``: NEFT ↔ RTGS, savings ↔ current, seniors ↔ regular …);
otherwise the follow-up is read together with the last question.
"""

from __future__ import annotations

import re
from functools import lru_cache

import yaml

from app.core.paths import DATA_DIR

_LEAD = re.compile(r"^\s*(?:and|aur|or|also|what about|how about|same|then|toh|to|for|in case of|if)\b", re.I)
_PRONOUN = re.compile(r"\b(?:it|its|that|this|those|these|them|one|there|iska|iski|iske|uska|uski|uske|ye|yeh|woh|wo|"
                      r"usme|isme|waha|wahan|same)\b", re.I)
_WHY = re.compile(r"^\s*(?:why|kyu|kyun|kyon|how come|reason|what if|agar|how can i improve|how do i improve)\b", re.I)
_MAX_WORDS = 9


@lru_cache(maxsize=1)
def groups() -> list[list[str]]:
    """Sibling terms, longest spelling first within each group."""
    raw = yaml.safe_load((DATA_DIR / "lexicon" / "followup_groups.yaml").read_text(encoding="utf-8")) or {}
    return [sorted((str(t).lower() for t in terms), key=len, reverse=True) for terms in raw.get("groups", [])]


def looks_like_followup(text: str) -> bool:
    """Short and leaning on what came before: "and for RTGS?", "same on Sundays?", "why?", "can I do it online?"."""
    words = re.findall(r"\w+", text)
    if not words or len(words) > _MAX_WORDS:
        return False
    return bool(_LEAD.search(text) or _WHY.search(text) or _PRONOUN.search(text))


def asks_why(text: str) -> bool:
    return bool(_WHY.search(text))


def _find(term_list: list[str], text: str) -> str | None:
    low = f" {text.lower()} "
    for term in term_list:
        if re.search(rf"(?<![\w]){re.escape(term)}(?![\w])", low):
            return term
    return None


def rewrite(text: str, previous: str) -> str:
    """The follow-up ``text`` as a stand-alone question, given the ``previous`` question."""
    if not previous:
        return text
    for group in groups():
        new = _find(group, text)
        old = _find(group, previous)
        if new and old and new != old:
            swapped = re.sub(rf"(?<![\w]){re.escape(old)}(?![\w])", new, previous, count=1, flags=re.I)
            rest = _LEAD.sub("", re.sub(rf"(?<![\w]){re.escape(new)}(?![\w])", "", text, flags=re.I)).strip(" ?.!,")
            return f"{swapped} {rest}".strip() if rest and len(rest.split()) > 1 else swapped
    return f"{text.strip()} ({previous.strip()})"
