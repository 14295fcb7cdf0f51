"""Normalisation, language hints and the message length limit."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings, strategies as st

from app.text.preprocess import Preprocessed, detect_language, normalize, preprocess, too_long_reply


@pytest.mark.parametrize("raw,clean", [
    ("  what's   my\tbalance  ", "what's my balance"),
    ("b\u0430lance", "balance"),  # Cyrillic а
    ("\u0421heck my b\u0430l\u0430nce", "Check my balance"),  # Cyrillic С and а
    ("\u03bftp", "otp"),  # Greek omicron
    ("\u043f\u0440\u0438\u0432\u0435\u0442", "\u043f\u0440\u0438\u0432\u0435\u0442"),  # real Russian stays
    ("\uff42\uff41\uff4c\uff41\uff4e\uff43\uff45", "balance"),  # fullwidth
    ("bal\u200bance", "balance"),  # zero-width space
    ("bal\u200d\u200c\u2060\ufeffance", "balance"),
    ("send \u202e005\u202c to ravi", "send 005 to ravi"),  # bidi override removed
    ("\u2066hi\u2069 \u200ethere\u200f", "hi there"),
    ("a\x00b\x07c\x1bd", "abcd"),  # control characters
    ("line one\r\n\r\n\r\nline two", "line one\nline two"),
    ("tab\t\tseparated", "tab separated"),
    ("\u00a0non\u2003breaking\u00a0", "non breaking"),
    ("मेरा बैलेंस", "मेरा बैलेंस"),
    ("\u2460 lakh", "1 lakh"),  # NFKC compatibility digit
    ("", ""),
])
def test_normalize(raw: str, clean: str) -> None:
    assert normalize(raw) == clean


@pytest.mark.parametrize("text,lang", [
    ("what is my balance", "en"),
    ("send 500 to Ravi", "en"),
    ("do you have a branch in Pune", "en"),
    ("मेरा बैलेंस कितना है", "hi"),
    ("मुझे पैसे भेजने हैं", "hi"),
    ("mera balance kitna hai", "hinglish"),
    ("Ravi ko 500 bhejo", "hinglish"),
    ("mujhe loan chahiye", "hinglish"),
    ("kya main card block kar sakta hoon", "hinglish"),
    ("paise transfer karo", "hinglish"),
    ("check my account बैलेंस", "hinglish"),
    ("hello", "en"),
    ("", "en"),
])
def test_detect_language(text: str, lang: str) -> None:
    assert detect_language(text) == lang


def test_preprocess_normal_message() -> None:
    pre = preprocess("  mera b\u0430lance  kitna hai ", max_chars=2000)
    assert pre == Preprocessed("mera balance kitna hai", 26, False, "hinglish", 2000)
    assert pre.reply is None and not pre.truncated


def test_too_long_is_flagged_and_not_processed() -> None:
    text = "send 500 to ravi " * 200  # 3,400 characters
    pre = preprocess(text, max_chars=2000)
    assert pre.too_long and pre.truncated
    assert pre.original_length == len(text)
    assert len(pre.text) <= 2000
    assert pre.reply == "That message is too long (3,400 characters; the limit is 2,000). Please shorten it."
    assert too_long_reply(2001, 2000) == "That message is too long (2,001 characters; the limit is 2,000). Please shorten it."


def test_limit_is_inclusive_and_defaults_to_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not preprocess("x" * 2000, max_chars=2000).too_long
    assert preprocess("x" * 2001, max_chars=2000).too_long
    from app.core.settings import reset_settings

    monkeypatch.setenv("SAHAYAK_MAX_MESSAGE_CHARS", "10")
    reset_settings()
    try:
        assert preprocess("x" * 11).too_long
        assert preprocess("x" * 11).reply.endswith("the limit is 10). Please shorten it.")
    finally:
        monkeypatch.delenv("SAHAYAK_MAX_MESSAGE_CHARS")
        reset_settings()


def test_huge_inputs_complete() -> None:
    for text in ["a" * 200_000, "\u200b" * 150_000, " \n" * 100_000, "b\u0430" * 60_000, "<|" * 80_000]:
        assert preprocess(text, max_chars=2000).too_long
        normalize(text)  # the normaliser itself is linear too


_INVISIBLE = [chr(c) for c in (0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0x202A, 0x202B, 0x202C, 0x202D, 0x202E,
                               0x2066, 0x2067, 0x2068, 0x2069, 0x200E, 0x200F)]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_normalize_properties(text: str) -> None:
    out = normalize(text)
    assert normalize(out) == out  # idempotent
    assert not any(ch in out for ch in _INVISIBLE)
    assert all(ch in "\n\t" or unicodedata.category(ch)[0] != "C" for ch in out)
    assert out == out.strip() and "  " not in out
    assert detect_language(out) in {"en", "hi", "hinglish"}
