"""Redaction sees what a person sees (issue 19, finding 2): numbers written with any separators,
invisible characters between the digits, or digits of another script are still masked, and the
masked form keeps the *last* four digits of the number. Property tests generate the disguises."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given, settings, strategies as st

from privacy.redact import find_pii, luhn_valid, redact, verhoeff_valid, visible_view
from tests.text.test_redact import NEAR_MISSES

# Characters a reader never sees (zero-width space/joiners, word joiner, BOM, soft hyphen, bidi controls).
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u202e", "\u202c", "\u2066", "\u180e"]
# Separators a reader sees between digit groups (NBSP and the full-width ones fold under NFKC).
VISIBLE_SEPARATORS = [" ", ".", "-", "/", "_", "\u2013", "\u2014", "\u2212", "\u00a0", "\u2009", "\uff0e", "\uff0d"]
# The digits 0-9 in other scripts: Devanagari, Arabic-Indic, Bengali, Gujarati, full-width.
SCRIPTS = ["0123456789", "०१२३४५६७८९", "٠١٢٣٤٥٦٧٨٩", "০১২৩৪৫৬৭৮৯", "૦૧૨૩૪૫૬૭૮૯", "０１２３４５６７８９"]


def _luhn(rng: random.Random, length: int) -> str:
    body = [rng.randint(3, 6)] + [rng.randint(0, 9) for _ in range(length - 2)]
    return next(c for c in ("".join(map(str, body)) + str(d) for d in range(10)) if luhn_valid(c))


def _verhoeff(rng: random.Random) -> str:
    body = str(rng.randint(2, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(10))
    return next(c for c in (body + str(d) for d in range(10)) if verhoeff_valid(c))


def _groups(number: str, layout: str) -> list[str]:
    if layout == "block":
        return [number]
    size = {"fours": 4, "threes": 3, "pairs": 2, "singles": 1}[layout]
    return [number[i:i + size] for i in range(0, len(number), size)]


@st.composite
def disguised(draw: st.DrawFn, number: str, layouts: list[str]) -> str:
    """``number`` written the way an attacker (or a careless customer) might write it."""
    script = draw(st.sampled_from(SCRIPTS))
    groups = _groups(number, draw(st.sampled_from(layouts)))
    hidden = st.lists(st.sampled_from(INVISIBLE), max_size=2).map("".join)
    # Between groups: visible separators, or only invisible ones (the groups then join up as seen).
    sep = st.one_of(st.lists(st.sampled_from(VISIBLE_SEPARATORS), min_size=1, max_size=3).map("".join),
                    st.lists(st.sampled_from(INVISIBLE), min_size=1, max_size=2).map("".join))
    out = []
    for n, group in enumerate(groups):
        if n:
            out.append(draw(sep))
        for ch in group:
            out.append(draw(hidden))
            out.append(script[int(ch)])
    return "".join(out)


def _seen_digits(text: str) -> str:
    return re.sub(r"[^0-9]", "", visible_view(text)[0])


@settings(max_examples=400, deadline=None)
@given(st.randoms(use_true_random=False), st.sampled_from([13, 15, 16, 19]), st.data(),
       st.sampled_from(["", "my card is ", "card no: ", "pay with "]), st.sampled_from(["", " thanks", ". ok?"]))
def test_disguised_card_numbers_are_masked(rng: random.Random, length: int, data: st.DataObject, before: str,
                                          after: str) -> None:
    number = _luhn(rng, length)
    layouts = ["block", "singles", "pairs", "threes"] + (["fours"] if length in (13, 16, 19) else [])
    written = data.draw(disguised(number, layouts))
    out = redact(f"{before}{written}{after}")
    assert number not in _seen_digits(out), (written, out)
    assert out.startswith(before) and out.endswith(after)
    # The masked form keeps the last four digits of the number, and nothing else of it.
    assert f"XXXX XXXX XXXX {number[-4:]}" in out, (written, out)
    assert redact(out) == out


@settings(max_examples=200, deadline=None)
@given(st.randoms(use_true_random=False), st.data(), st.sampled_from(["", "id ", "aadhaar no "]))
def test_disguised_aadhaar_numbers_are_masked(rng: random.Random, data: st.DataObject, before: str) -> None:
    number = _verhoeff(rng)
    written = data.draw(disguised(number, ["block", "fours"]))
    out = redact(f"{before}{written} please")
    assert number not in _seen_digits(out), (written, out)
    assert f"XXXX XXXX {number[-4:]}" in out, (written, out)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=10**8, max_value=10**18 - 1), st.data(),
       st.sampled_from(["a/c ", "account number ", "my acct no. ", "A/C: "]))
def test_disguised_account_numbers_are_masked(value: int, data: st.DataObject, label: str) -> None:
    number = str(value)
    written = data.draw(disguised(number, ["block", "fours", "threes"]))
    out = redact(f"{label}{written}")
    assert number not in _seen_digits(out), (written, out)
    assert out.endswith(number[-4:]) and "XXXX" in out, (written, out)


@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"[A-Z]{3}[PCHFATBLJG][A-Z][0-9]{4}[A-Z]", fullmatch=True),
       st.lists(st.sampled_from(INVISIBLE + ["", "", " ", "-", "."]), min_size=2, max_size=2),
       st.sampled_from(["", "PAN ", "my pan is "]), st.booleans())
def test_disguised_pan_is_masked(pan: str, seps: list[str], label: str, fullwidth: bool) -> None:
    written = f"{pan[:5]}{seps[0]}{pan[5:9]}{seps[1]}{pan[9]}"
    if fullwidth:
        written = "".join(chr(ord(c) + 0xFEE0) for c in written if c.isalnum())
    out = redact(f"{label}{written} submitted")
    assert "[PAN]" in out and pan[5:9] not in _seen_digits(out), (written, out)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(NEAR_MISSES), st.randoms(use_true_random=False))
def test_invisible_characters_do_not_create_pii(text: str, rng: random.Random) -> None:
    """What a person reads as a reference or a date stays unmasked however it is padded."""
    padded = "".join(ch + (rng.choice(INVISIBLE) if rng.random() < 0.3 else "") for ch in text)
    assert find_pii(padded) == []
    assert redact(padded) == padded  # text without PII comes back unchanged, byte for byte


_alphabet = st.sampled_from(list("0123456789") + VISIBLE_SEPARATORS + INVISIBLE + list("४٤４ card a/c otp"))


@settings(max_examples=400, deadline=None)
@given(st.lists(_alphabet, max_size=80).map("".join))
def test_redact_is_idempotent_on_disguised_text(text: str) -> None:
    once = redact(text)
    assert redact(once) == once
    spans = find_pii(text)
    assert all(0 <= s.start < s.end <= len(text) for s in spans)
    assert all(a.end <= b.start for a, b in zip(spans, spans[1:]))


@pytest.mark.parametrize("text,expected", [
    ("card 4111 1111 1111 1234", "card XXXXXXXX1234"),  # labelled, not Luhn: still the LAST four
    ("card 4000 0566 5566 5556", "card XXXX XXXX XXXX 5556"),
    ("card 4000.0566.5566.5556", "card XXXX XXXX XXXX 5556"),
    ("card 4000\u200b0566\u200b5566\u200b5556", "card XXXX XXXX XXXX 5556"),
    ("card 4000\u200b.0566 -\u200c5566/5556 ok", "card XXXX XXXX XXXX 5556 ok"),
    ("कार्ड ४००० ०५६६ ५५६६ ५५५६", "कार्ड XXXX XXXX XXXX 5556"),
    ("4 0 0 0 0 5 6 6 5 5 6 6 5 5 5 6", "XXXX XXXX XXXX 5556"),
    ("aadhaar 2341-2341-2346", "aadhaar XXXX XXXX 2346"),
    ("PAN ABCDE\u200b1234\u200bF", "PAN [PAN]"),
    ("my a/c is 1234.5678.9012", "my a/c is XXXXXXXX9012"),
    ("mobile 98200\u200b12345", "mobile +91XXXXXX2345"),
])
def test_examples(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_large_disguised_inputs_complete() -> None:
    redact("4\u200b1." * 30_000)
    redact("४ " * 50_000)
