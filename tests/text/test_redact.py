"""PII redaction: what must be masked, the near-misses that must not be, and properties."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given, settings, strategies as st

from privacy.redact import Span, find_pii, luhn_valid, redact, redact_obj, verhoeff_valid

AADHAAR_OK = "234123412346"  # passes Verhoeff
AADHAAR_BAD = "234123412347"  # fails Verhoeff

REDACT = [
    # cards (Luhn-valid)
    ("my card is 4111 1111 1111 1111", "my card is XXXX XXXX XXXX 1111"),
    ("4111111111111111", "XXXX XXXX XXXX 1111"),
    ("card 4111-1111-1111-1111 exp 12/27", "card XXXX XXXX XXXX 1111 exp 12/27"),
    ("amex 3782 822463 10005 please", "amex XXXX XXXX XXXX 0005 please"),
    ("5555555555554444.", "XXXX XXXX XXXX 4444."),
    ("diners 3056 930902 5904", "diners XXXX XXXX XXXX 5904"),
    ("visa 4222222222222", "visa XXXX XXXX XXXX 2222"),
    ("two cards: 4111111111111111 and 5555 5555 5555 4444", "two cards: XXXX XXXX XXXX 1111 and XXXX XXXX XXXX 4444"),
    # a labelled card number that fails Luhn still leaks: masked as an account-style number
    ("card number 4111 1111 1111 1112", "card number XXXXXXXX1112"),
    # CVV
    ("cvv 123", "cvv [CVV]"),
    ("CVV: 1234", "CVV: [CVV]"),
    ("security code 123", "security code [CVV]"),
    ("cvc is 987", "cvc is [CVV]"),
    # Aadhaar
    (f"aadhaar {AADHAAR_OK[:4]} {AADHAAR_OK[4:8]} {AADHAAR_OK[8:]}", "aadhaar XXXX XXXX 2346"),
    (f"my aadhar no is {AADHAAR_BAD}", "my aadhar no is XXXX XXXX 2347"),  # labelled: checksum not needed
    (f"id {AADHAAR_OK}", "id XXXX XXXX 2346"),  # unlabelled but Verhoeff-valid
    ("UID 2345 6789 0123", "UID XXXX XXXX 0123"),
    # PAN
    ("PAN ABCDE1234F", "PAN [PAN]"),
    ("my pan is abcde1234f", "my pan is [PAN]"),
    ("ABCPE1234K submitted", "[PAN] submitted"),
    # account numbers
    ("my a/c no. 123456789012", "my a/c no. XXXXXXXX9012"),
    ("account number: 00112233445566", "account number: XXXXXXXX5566"),
    ("acct 123456789", "acct XXXXXXXX6789"),
    ("A/C 1234 5678 9012", "A/C XXXXXXXX9012"),
    ("savings account 4111111111111111", "savings account XXXXXXXX1111"),  # account label wins over Luhn
    # phones
    ("call me on 9820012345", "call me on +91XXXXXX2345"),
    ("+91 98200 12345", "+91XXXXXX2345"),
    ("+91-9820012345", "+91XXXXXX2345"),
    ("09820012345", "+91XXXXXX2345"),
    ("mobile 919820012345", "mobile +91XXXXXX2345"),
    ("982-001-2345 is mine", "+91XXXXXX2345 is mine"),
    # e-mail
    ("mail ravi.kumar@example.com now", "mail r***@example.com now"),
    ("a@b.co", "a***@b.co"),
    ("Priya.S+bank@mail.example.org.", "P***@mail.example.org."),
    # OTP / PIN in context
    ("otp is 482913", "otp is [OTP]"),
    ("your OTP: 4829", "your OTP: [OTP]"),
    ("one time password 123456", "one time password [OTP]"),
    ("verification code is 5555", "verification code is [OTP]"),
    ("my atm pin is 1234", "my atm pin is [PIN]"),
    ("UPI PIN 123456", "UPI PIN [PIN]"),
    ("mpin: 4321", "mpin: [PIN]"),
    # several at once
    ("card 4111111111111111 cvv 123 otp 998877 mail a.b@x.in",
     "card XXXX XXXX XXXX 1111 cvv [CVV] otp [OTP] mail a***@x.in"),
]

NEAR_MISSES = [
    "order #4021 8812",
    "₹1,20,000",
    "Rs 12,34,567.89",
    "15/08/2026",
    "2026-11-24",
    "400001",
    "pincode 400001",
    "pin code 411038",
    "at 10:30",
    "TXN20261124ABC",
    "ref REF2026112412345",
    "IFSC SBIN0001234",
    "ifsc code HDFC0000123 for the branch",
    "send 500 to ravi",
    "card ending 4321",
    "account ending 1234",
    "1234 5678 9012 3456",  # 16 digits, not Luhn, no label: kept (could be a reference)
    "1234567890123456",
    AADHAAR_BAD,  # unlabelled 12 digits failing Verhoeff
    "1800-266-0101",  # toll-free number
    "5551234567",  # 10 digits not starting 6-9
    "call 12345",
    "version 1.2.3.4",
    "ABCDE12345",  # not a PAN shape
    "abcde1234f",  # lower case without a PAN label
    "user@localhost",
    "cvv",
    "otp please",
    "the year 2026 and 2027",
    "FY 2025-26",
    "loan of 5 lakh for 20 years at 8.5%",
]


@pytest.mark.parametrize("text,expected", REDACT)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize("text", NEAR_MISSES)
def test_near_misses_are_kept(text: str) -> None:
    assert find_pii(text) == []
    assert redact(text) == text


def test_find_pii_spans() -> None:
    text = "card 4111111111111111, otp 123456, mail r@x.in"
    spans = find_pii(text)
    assert [s.kind for s in spans] == ["card", "otp", "email"]
    assert spans[0] == Span("card", 5, 21)
    assert [text[s.start:s.end] for s in spans] == ["4111111111111111", "123456", "r@x.in"]


def test_check_digits() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert verhoeff_valid("2363") and not verhoeff_valid("2364")  # the textbook example
    assert verhoeff_valid(AADHAAR_OK) and not verhoeff_valid(AADHAAR_BAD)


def test_redact_obj() -> None:
    obj = {"text": "otp 123456", "nested": [{"card": "4111 1111 1111 1111"}, ("9820012345", 5)],
           "n": 3, "none": None, "ok": "hello", "set": {"a@b.co"}}
    assert redact_obj(obj) == {
        "text": "otp [OTP]", "nested": [{"card": "XXXX XXXX XXXX 1111"}, ("+91XXXXXX2345", 5)],
        "n": 3, "none": None, "ok": "hello", "set": {"a***@b.co"}}


def _luhn_number(rng: random.Random, length: int) -> str:
    body = [rng.randint(0, 9) for _ in range(length - 1)]
    body[0] = rng.randint(3, 6)
    for check in range(10):
        candidate = "".join(map(str, body)) + str(check)
        if luhn_valid(candidate):
            return candidate
    raise AssertionError("unreachable")


@settings(max_examples=200, deadline=None)
@given(st.randoms(use_true_random=False), st.sampled_from([13, 15, 16, 19]), st.text(max_size=40),
       st.text(max_size=40))
def test_any_luhn_card_number_is_masked(rng: random.Random, length: int, before: str, after: str) -> None:
    number = _luhn_number(rng, length)
    spaced = " ".join(number[i:i + 4] for i in range(0, len(number), 4)) if length == 16 else number
    text = f"{before} {spaced} {after}"
    out = redact(text)
    assert spaced not in out and number not in re.sub(r"[ -]", "", out)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_redact_is_idempotent_and_never_raises(text: str) -> None:
    once = redact(text)
    assert redact(once) == once
    spans = find_pii(text)
    assert all(0 <= s.start < s.end <= len(text) for s in spans)
    assert all(a.end <= b.start for a, b in zip(spans, spans[1:]))


_digits = st.text(alphabet="0123456789 -+", min_size=0, max_size=60)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_digits, st.sampled_from(["card", "a/c", "otp", "cvv", "aadhaar", "pan", " ", "@x.in"])),
                max_size=8).map(" ".join))
def test_no_luhn_card_survives(text: str) -> None:
    out = redact(text)
    assert redact(out) == out
    # No window of whole digit groups that is card-shaped and Luhn-valid survives redaction.
    for run in re.finditer(r"\d+(?:[ -]\d+)*", out):
        if run.start() > 0 and out[run.start() - 1].isalpha():
            continue
        groups = re.split(r"[ -]", run.group(0))
        if out[max(0, run.start() - 5):run.start()] == "XXXX ":
            groups = groups[1:]  # the visible last four of a masked number
        for i in range(len(groups)):
            for k in range(i + 1, len(groups) + 1):
                digits = "".join(groups[i:k])
                lengths = [len(g) for g in groups[i:k]]
                card_shaped = k - i == 1 or all(n == 4 for n in lengths[:-1]) and lengths[-1] <= 4 or lengths in (
                    [4, 6, 5], [4, 6, 4])
                assert not (card_shaped and 13 <= len(digits) <= 19 and luhn_valid(digits)), (text, out)


@pytest.mark.parametrize("text", ["1 " * 50_000, "4111 " * 25_000, "a@" * 50_000, "9820012345 " * 9_000,
                                  "x" * 100_000 + "@", "account 1 " * 10_000])
def test_large_inputs_complete(text: str) -> None:
    redact(text)  # linear-time patterns: this must finish, not hang


def test_a_plus_in_front_does_not_hide_a_card() -> None:
    """Found by the property test above: "+4111 1111 1111 1111" was read as a phone number and kept."""
    assert "4111" not in redact("+4111111111111111").replace("XXXX XXXX XXXX 1111", "")
    assert redact("+0001113132797").endswith("2797") and "000111" not in redact("+0001113132797")
    assert redact("call +91 98200 12345") == "call +91XXXXXX2345"  # an Indian mobile stays a phone
