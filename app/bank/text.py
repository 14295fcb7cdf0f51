"""Text helpers of the bank: masking numbers for display and normalising names for matching."""

from __future__ import annotations

import re


def mask_number(number: str, keep: int = 4) -> str:
    """``501000427781`` → ``XXXXXXXX7781`` (only the last ``keep`` digits stay visible)."""
    return "X" * max(0, len(number) - keep) + number[-keep:]


def mask_phone(phone: str) -> str:
    """``+919820011234`` → ``+91XXXXXX1234``."""
    digits = phone.strip()
    if len(digits) <= 7:
        return "X" * max(0, len(digits) - 2) + digits[-2:]
    return digits[:3] + "X" * (len(digits) - 7) + digits[-4:]


def normalise(text: str) -> str:
    """Lower case, punctuation to spaces, runs of spaces collapsed: how references are compared."""
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", " ", text.lower())).strip()
