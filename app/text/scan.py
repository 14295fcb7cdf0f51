"""The working copy of a message that entity extractors share: spans already claimed
(an OTP, a card number, a date) are masked so that later extractors never read them again."""

from __future__ import annotations

import re

I = re.IGNORECASE
MASK = "\u2591"  # stands in for masked text: not a digit, letter or space


class Message:
    """A normalised message plus a working copy in which non-money spans are masked out."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._work = text
        self._pending: list[tuple[int, int]] = []

    @property
    def work(self) -> str:
        """The text with every masked span so far replaced (masks are applied in one pass)."""
        if self._pending:
            out, pos = [], 0
            for start, end in sorted(self._pending):
                if start < pos:
                    start = pos
                if end <= start:
                    continue
                out.append(self._work[pos:start])
                out.append(MASK * (end - start))
                pos = end
            out.append(self._work[pos:])
            self._work = "".join(out)
            self._pending.clear()
        return self._work

    def mask(self, start: int, end: int) -> None:
        if end > start:
            self._pending.append((start, end))

    def free(self, start: int, end: int) -> bool:
        """Not masked by an earlier step (the current step's own matches never overlap)."""
        return MASK not in self._work[start:end]


def closest_label(text: str, start: int, labels: dict[str, re.Pattern[str]], window: int = 40) -> str | None:
    """The label whose last mention ends closest before ``start`` (within ``window`` characters)."""
    before = text[max(0, start - window):start]
    best, best_pos = None, -1
    for name, pattern in labels.items():
        for m in pattern.finditer(before):
            if m.end() > best_pos:
                best, best_pos = name, m.end()
    return best
