"""Entity extraction: a table of real phrasings plus property tests."""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from app.text.entities import Amount, extract_entities, parse_amount

TODAY = date(2026, 11, 24)  # a Tuesday
CASES = yaml.safe_load((Path(__file__).parent / "entity_cases.yaml").read_text(encoding="utf-8"))


def _expected_amount(value: object) -> dict:
    if isinstance(value, dict):
        return {"value": float(value["value"]), "currency": value["currency"]}
    return {"value": float(value), "currency": "INR"}


def test_table_is_large_enough() -> None:
    assert len(CASES) >= 150


@pytest.mark.parametrize("case", CASES, ids=[c["text"][:40] for c in CASES])
def test_entity_table(case: dict) -> None:
    got = extract_entities(case["text"], today=TODAY)
    for key, want in (case.get("expect") or {}).items():
        if key == "amount":
            want = _expected_amount(want)
        assert got.get(key) == want, f"{key}: {got}"
    for key in case.get("absent") or []:
        assert key not in got, f"unexpected {key}: {got}"


@pytest.mark.parametrize("text,value,currency", [
    ("₹5,000", 5000, "INR"), ("Rs 1,20,000.50", 120000.5, "INR"), ("5k", 5000, "INR"),
    ("1.5 lakh", 150000, "INR"), ("two thousand rupees", 2000, "INR"), ("£50", 50, "GBP"),
    ("40€", 40, "EUR"), ("USD 20", 20, "USD"), ("5 hazaar", 5000, "INR"), ("500 rupaye", 500, "INR"),
])
def test_parse_amount(text: str, value: float, currency: str) -> None:
    assert parse_amount(text, today=TODAY) == Amount(value, currency)


@pytest.mark.parametrize("text", [
    "branch near 400001", "card ending 4321", "a/c 123456789012", "otp is 123456", "on the 2nd",
    "15/08/2026", "in 2025", "call 9820012345", "at 5:30 pm", "for 5 years", "what is my balance",
])
def test_parse_amount_ignores_non_money(text: str) -> None:
    assert parse_amount(text, today=TODAY) is None


def test_today_defaults_to_the_real_date() -> None:
    assert extract_entities("tomorrow")["date"] == date.fromordinal(date.today().toordinal() + 1).isoformat()


def test_amount_is_a_plain_dict_for_json() -> None:
    assert extract_entities("send ₹2,500 to Ravi")["amount"] == {"value": 2500.0, "currency": "INR"}


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_never_raises_and_amounts_are_finite_positive(text: str) -> None:
    found = extract_entities(text, today=TODAY)
    assert isinstance(found, dict)
    if "amount" in found:
        assert math.isfinite(found["amount"]["value"]) and found["amount"]["value"] > 0
    if "date" in found:
        date.fromisoformat(found["date"])


_pieces = st.sampled_from([
    "send", "pay", "to", "Ravi", "ko", "bhejo", "₹", "Rs.", "5,000", "1.5", "lakh", "k", "crore", "$", "€",
    "on", "the", "2nd", "March", "15/08", "card", "ending", "4321", "a/c", "otp", "is", "123456", "branch",
    "near", "400001", "savings", "current", "account", "tomorrow", "friday", "99999999999999999999", "0",
    "twenty", "five", "hundred", "thousand", "and", "not", "make it", ",", ".", "\u200b", "\u0430",
])


@settings(max_examples=300, deadline=None)
@given(st.lists(_pieces, max_size=12).map(" ".join))
def test_banking_like_noise_never_breaks(text: str) -> None:
    found = extract_entities(text, today=TODAY)
    amount = parse_amount(text, today=TODAY)
    if amount is not None:
        assert math.isfinite(amount.value) and amount.value > 0
    assert ("amount" in found) == (amount is not None)


@pytest.mark.parametrize("text", ["1 " * 50_000, "₹5," * 30_000, "send 500 to " * 8_000, "on the 2nd " * 9_000])
def test_large_inputs_complete(text: str) -> None:
    extract_entities(text, today=TODAY)  # must finish (linear-time patterns), not hang
