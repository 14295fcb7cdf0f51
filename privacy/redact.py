"""PII redaction for everything Sahayak writes down (chat history, provenance, hand-offs, logs).

``find_pii(text)`` returns the sensitive spans; ``redact(text)`` replaces them.

Redaction sees what a person sees: every check runs on a *view* of the text in which each
character is NFKC-normalised, invisible and format characters (zero-width spaces and joiners,
soft hyphens, bidi controls, other ``Cf``/``Cc``) are dropped and digits of every script
(Devanagari ``४``, Arabic-Indic ``٤``, full-width ``４``…) are ASCII. Spans found in the view
are mapped back to the original text, so the replacement also swallows the invisible characters
inside a number, and text without PII is returned unchanged. Digit groups may be separated by
any run of up to three separators (spaces, dots, hyphens and dashes, slashes, underscores,
mixed: ``4111.1111-1111 1111``, ``4111 / 1111``); only then are Luhn (cards) and Verhoeff
(Aadhaar) checked.

=============  ====================================================  ==========================
kind           what is found                                         replaced by
=============  ====================================================  ==========================
card           13–19 digits passing Luhn, in any grouping            ``XXXX XXXX XXXX 1234``
account        9–18 digits after an account label (``a/c``,           ``XXXXXXXX1234``
               ``account no``…); also a non-Luhn 13–19 digit number
               after a card label (a mistyped card still leaks)
aadhaar        12 digits (in at most four groups), first digit 2–9:   ``XXXX XXXX 1234``
               after an Aadhaar/UID label any such number; unlabelled
               only when the Verhoeff check digit is right
pan            ``ABCDE1234F`` (upper case; any case after "PAN")       ``[PAN]``
phone          Indian mobile: 10 digits starting 6–9, optional         ``+91XXXXXX1234``
               ``+91``/``91``/``0`` prefix, spaced or dashed
email          ``name@domain.tld``                                    ``n***@domain.tld``
cvv            3–4 digits after ``cvv``/``cvc``/``security code``      ``[CVV]``
otp            4–8 digits after ``otp``/``one time password``/        ``[OTP]``
               ``verification code``
pin            4–6 digits after ``pin``/``mpin``/``upi pin``           ``[PIN]``
               (not ``pin code``)
=============  ====================================================  ==========================

Left alone on purpose: IFSC codes (``SBIN0001234`` names a public branch, not a person, and
support needs it), amounts (``₹1,20,000``), dates, times, pincodes, order and reference
numbers (``order #4021 8812``, ``TXN20261124ABC``), short numbers, and long digit strings with
no label that fail Luhn (an unlabelled 16-digit non-Luhn number is not a card; without a
label it may be a reference, so it is kept). Labels are looked for in the 40 characters before
a number on the same line, no further back than the previous number or masked value (a label
belongs to the next number only); the nearest label wins.

Only the digits are replaced, labels stay ("cvv [CVV]"), so redacted text still reads well; a
masked number keeps the *last* four digits of the number (``card 4111 1111 1111 1234`` →
``card XXXX XXXX XXXX 1234``).
``redact`` is idempotent on ordinary text; on adversarial strings with codes, e-mails and
numbers glued together a second pass may mask a little more (never less). All patterns are
linear-time (no nested unbounded repetition).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from app.core.redaction import map_strings
from app.text.preprocess import fold_digits, strip_invisible

I = re.IGNORECASE


@dataclass(frozen=True)
class Span:
    """A piece of PII: ``text[start:end]`` is of ``kind``."""

    kind: str
    start: int
    end: int


# --- check digits ----------------------------------------------------------------------------


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check used by payment card numbers."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


_VERHOEFF_D = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 0, 6, 7, 8, 9, 5], [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
    [3, 4, 0, 1, 2, 8, 9, 5, 6, 7], [4, 0, 1, 2, 3, 9, 5, 6, 7, 8], [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
    [6, 5, 9, 8, 7, 1, 0, 4, 3, 2], [7, 6, 5, 9, 8, 2, 1, 0, 4, 3], [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
]
_VERHOEFF_P = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 5, 7, 6, 2, 8, 3, 0, 9, 4], [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
    [8, 9, 1, 6, 0, 4, 3, 5, 2, 7], [9, 4, 5, 3, 1, 2, 6, 8, 7, 0], [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
    [2, 7, 9, 3, 8, 0, 6, 4, 1, 5], [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
]


def verhoeff_valid(digits: str) -> bool:
    """The Verhoeff check used by Aadhaar numbers (the last digit checks the rest)."""
    c = 0
    for i, ch in enumerate(reversed(digits)):
        c = _VERHOEFF_D[c][_VERHOEFF_P[i % 8][ord(ch) - 48]]
    return c == 0


# --- patterns --------------------------------------------------------------------------------

# What may stand between the digit groups of one number (after NFKC): spaces, dots, slashes,
# underscores and every kind of hyphen or dash, up to three in a row ("4111 - 1111", "4111./1111").
SEPARATORS = " .-/_\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2043\u30fb\u00b7"
_SEP = "[" + re.escape(SEPARATORS) + "]{1,3}"
# Digit groups with separators between them; classified in Python, so the regex stays linear.
_RUN = re.compile(r"\+?\d+(?:" + _SEP + r"\d+)*")
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+@-])([A-Za-z0-9._%+-]{1,64})@([A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){1,8})(?![A-Za-z0-9@-])")
# A PAN may be written in its three parts with separators between them ("ABCDE-1234-F").
_PAN_SEP = "[" + re.escape(SEPARATORS) + "]{0,3}"
_PAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{5}" + _PAN_SEP + r"\d{4}" + _PAN_SEP + r"[A-Z](?![A-Za-z0-9])")
_PAN_ANY_CASE = re.compile(r"\bpan\b(?:\s{0,3}(?:card|no\.?|number|is|:|-|#)){0,4}\s{0,3}([A-Za-z]{5}" + _PAN_SEP
                           + r"\d{4}" + _PAN_SEP + r"[A-Za-z])(?![A-Za-z0-9])", I)
# A code ends where the word ends: "cvv 123abc" or "pin 2001-27970@x.in" are something else.
_CODE_END = r"(?![\dA-Za-z@]|[-_.%+][A-Za-z0-9])"
_CODE_LABELS = {
    "cvv": re.compile(r"\b(?:cvv2?|cvc2?|cvn|security\s+code|card\s+verification\s+(?:value|code))\b"
                      r"(?:\s{0,3}(?:no\.?|number|code|is|:|=|-|#)){0,3}\s{0,3}(\d{3,4})" + _CODE_END, I),
    "otp": re.compile(r"\b(?:otp|one[\s-]?time[\s-]?(?:password|passcode|pin|code)|verification\s+code|passcode)\b"
                      r"(?:\s{0,3}(?:no\.?|number|code|is|was|:|=|-|#)){0,3}\s{0,3}(\d{4,8})" + _CODE_END, I),
    "pin": re.compile(r"\b(?:m?pin|upi\s+pin|atm\s+pin|card\s+pin)\b(?!\s{0,2}code)"
                      r"(?:\s{0,3}(?:no\.?|number|is|was|:|=|-|#)){0,3}\s{0,3}(\d{4,6})" + _CODE_END, I),
}
_LABELS = {
    "account": re.compile(r"\b(?:a/c|acct|acc|account|ac\s+no|khata)\b|a/c", I),
    "card": re.compile(r"\bcards?\b", I),
    "aadhaar": re.compile(r"\b(?:aadhaa?r|adhaar|aadhar|uid|uidai)\b", I),
    "phone": re.compile(r"\b(?:phone|mobile|mob|cell|call|whatsapp|contact|sms)\b", I),
}


_ANY_LABEL = re.compile("|".join(f"(?P<{name}>{p.pattern})" for name, p in _LABELS.items()), I)


def _label_before(text: str, start: int) -> tuple[str | None, int]:
    """The nearest label in the 40 characters before ``start`` on the same line, and where it ends."""
    offset = max(0, start - 40)
    window = text[offset:start]
    # A label belongs to the next number only: look no further back than the line start or
    # the previous number or masked value ("a/c 123 and 4567…" labels 123, not 4567…).
    cut = max(window.rfind("\n"), *(window.rfind(ch) for ch in "0123456789]*"))
    if cut >= 0:
        offset += cut + 1
        window = window[cut + 1:]
    last = None
    for last in _ANY_LABEL.finditer(window):
        pass
    return (last.lastgroup, offset + last.end()) if last else (None, -1)


# The order in which a window of digit groups is judged: a label decides first ("a/c 4111…" is an
# account even when it passes Luhn), then a Luhn-valid 13–19 digit number in any grouping (removing
# invisible characters can join groups: "45567375-8689 9855" is a card as seen), then the rest
# (phones, unlabelled Aadhaar, mistyped labelled cards). Within a phase the longest window wins.
PHASES = ("label", "card", "other")


def _classify(digits: str, lengths: list[int], plus: bool, label: str | None, phase: str = "other") -> str | None:
    """The kind of PII a window of digit groups is in ``phase`` (see :data:`PHASES`), or ``None``."""
    n = len(digits)
    if phase == "label":
        if label == "account" and 9 <= n <= 18:
            return "account"
        if label == "aadhaar" and n == 12 and digits[0] not in "01":
            return "aadhaar"
        return None
    if phase == "card":
        # A "+" in front does not make a card number a phone number: masking an odd international
        # number as a card is the safe mistake.
        return "card" if 13 <= n <= 19 and luhn_valid(digits) else None
    if 13 <= n <= 19 and label == "card":
        return "account"  # a mistyped card number still leaks most of the card
    if _is_phone(digits, lengths, plus) or (label == "phone" and len(digits) == 12 and digits[:2] == "91"
                                             and digits[2] in "6789"):
        return "phone"
    if n == 12 and digits[0] not in "01" and len(lengths) <= 4 and verhoeff_valid(digits):
        return "aadhaar"
    return None


def _is_phone(digits: str, lengths: list[int], plus: bool) -> bool:
    if plus:
        return len(digits) == 12 and digits.startswith("91") and digits[2] in "6789"
    if len(digits) == 10:
        return digits[0] in "6789" and all(n >= 2 for n in lengths)
    if len(digits) == 11:
        return digits[0] == "0" and digits[1] in "6789" and lengths[0] in (1, 11, 5, 3)
    if len(digits) == 12:
        return digits.startswith("91") and digits[2] in "6789" and lengths[0] == 2
    return False


def _number_spans(text: str) -> list[Span]:
    spans: list[Span] = []
    for run in _RUN.finditer(text):
        plus = run.group(0).startswith("+")
        base = run.start() + (1 if plus else 0)
        groups = [(m.start() + base, m.end() + base) for m in _DIGITS.finditer(run.group(0)[1 if plus else 0:])]
        # A run glued to letters on either side is part of an identifier (TXN2026…, IFSC): drop that group.
        if groups and groups[0][0] > 0 and text[groups[0][0] - 1].isalpha() and not plus:
            groups = groups[1:]
        if groups and groups[-1][1] < len(text) and text[groups[-1][1]].isalpha():
            groups = groups[:-1]
        # The last four digits we leave visible ("XXXX XXXX 1234") were already judged as part of
        # the masked number: never start a new number with them (keeps redact idempotent).
        if groups and not plus and text[max(0, groups[0][0] - 5):groups[0][0]] in ("XXXX ", "XXXX-"):
            groups = groups[1:]
        if not groups:
            continue
        run_label, run_label_end = _label_before(text, groups[0][0] - (1 if plus else 0))
        lengths_all = [b - a for a, b in groups]
        all_digits = "".join(text[a:b] for a, b in groups)
        offsets = [0]
        for n in lengths_all:
            offsets.append(offsets[-1] + n)
        i = 0
        while i < len(groups):
            hit = None
            # Longest window of whole groups first; a window never exceeds 19 digits.
            j = i
            while j < len(groups) and offsets[j + 1] - offsets[i] <= 19:
                j += 1
            with_plus = plus and i == 0
            if j > i and offsets[j] - offsets[i] >= 9:  # nothing we redact is shorter than 9 digits
                # Runs hold only digits and separators, so a label for any group precedes the run.
                label = run_label if groups[i][0] - run_label_end <= 40 else None
                for phase in PHASES:
                    for k in range(j, i, -1):
                        if offsets[k] - offsets[i] < 9:
                            break
                        if phase == "other" and k - i > 5:
                            continue  # only an account or a card number is written in more than five groups
                        kind = _classify(all_digits[offsets[i]:offsets[k]], lengths_all[i:k], with_plus, label, phase)
                        if kind:
                            hit, next_i = Span(kind, groups[i][0] - (1 if with_plus else 0), groups[k - 1][1]), k
                            break
                    if hit:
                        i = next_i
                        break
            if hit:
                spans.append(hit)
            else:
                i += 1
    return spans


# --- what a person sees --------------------------------------------------------------------

_ASCII_HIDDEN = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
_DIGITS = re.compile(r"[0-9]+")


@lru_cache(maxsize=4096)
def _seen(ch: str) -> str:
    """What one character looks like to a reader: NFKC, invisible characters gone, ASCII digits."""
    return fold_digits(strip_invisible(unicodedata.normalize("NFKC", ch)))


def visible_view(text: str) -> tuple[str, list[int] | None]:
    """``text`` as a person sees it (see the module docstring) and, for each character of that
    view, the index of the original character it came from (``None``: the view is ``text``)."""
    if text.isascii() and not _ASCII_HIDDEN.search(text):
        return text, None
    out: list[str] = []
    index: list[int] = []
    for i, ch in enumerate(text):
        seen = ch if ch.isascii() and ch.isprintable() else _seen(ch)
        out.append(seen)
        index.extend([i] * len(seen))
    return "".join(out), index


def _find(text: str) -> list[tuple[Span, str]]:
    """PII spans in original coordinates, each with the value as seen (normalised)."""
    view, index = visible_view(text)
    spans = _find_in_view(view)
    if index is None:
        return [(s, view[s.start:s.end]) for s in spans]
    return [(Span(s.kind, index[s.start], index[s.end - 1] + 1), view[s.start:s.end]) for s in spans]


def find_pii(text: str) -> list[Span]:
    """Every PII span in ``text``, sorted and non-overlapping (labelled codes win over numbers).

    Spans index the original ``text``; they are found in its :func:`visible_view`."""
    return [span for span, _ in _find(text)]


def _find_in_view(text: str) -> list[Span]:
    candidates: list[Span] = []
    for kind, pattern in _CODE_LABELS.items():
        candidates += [Span(kind, m.start(1), m.end(1)) for m in pattern.finditer(text)]
    candidates += [Span("pan", m.start(1), m.end(1)) for m in _PAN_ANY_CASE.finditer(text)]
    candidates += [Span("pan", m.start(), m.end()) for m in _PAN.finditer(text)]
    candidates += [Span("email", m.start(), m.end()) for m in _EMAIL.finditer(text)]
    candidates += _number_spans(text)
    chosen: list[Span] = []
    covered = bytearray(len(text))
    for span in candidates:  # earlier kinds take precedence
        if not any(covered[span.start:span.end]):
            chosen.append(span)
            covered[span.start:span.end] = b"\x01" * (span.end - span.start)
    return sorted(chosen, key=lambda s: s.start)


def _replacement(kind: str, value: str) -> str:
    """The masked form of ``value`` (as seen): numbers keep the last four digits of the number."""
    digits = re.sub(r"[^0-9]", "", value)
    last4 = digits[-4:]
    if kind == "card":
        return f"XXXX XXXX XXXX {last4}"
    if kind == "aadhaar":
        return f"XXXX XXXX {last4}"
    if kind == "account":
        return f"XXXXXXXX{last4}"
    if kind == "phone":
        return f"+91XXXXXX{last4}"
    if kind == "email":
        local, _, domain = value.partition("@")
        # Keep the first letter only: a kept digit could join the digits before it into a new number.
        first = local[:1] if local[:1].isalpha() else "*"
        return f"{first}***@{domain}"
    return {"pan": "[PAN]", "cvv": "[CVV]", "otp": "[OTP]", "pin": "[PIN]"}[kind]


def redact(text: str) -> str:
    """``text`` with every PII span replaced (see the module table)."""
    if not text or not isinstance(text, str):
        return text
    out: list[str] = []
    pos = 0
    for span, value in _find(text):
        out.append(text[pos:span.start])
        out.append(_replacement(span.kind, value))
        pos = span.end
    out.append(text[pos:])
    return "".join(out)


def redact_obj(obj: Any) -> Any:
    """Redact every string inside nested dicts, lists, tuples and sets (keys are kept as they are)."""
    return map_strings(obj, redact)
