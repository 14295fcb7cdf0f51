"""Entity extraction for banking messages: amounts, accounts, cards, dates, places, people.

:func:`extract_entities` returns a dict with any of these keys (see docs/architecture.md)::

    amount        {"value": 2500.0, "currency": "INR"}
    account_ref   "savings" | "current" | digits of an account number ("1234")
    account_type  "savings" | "current"
    card_last4    "4321"
    card_type     "debit" | "credit"
    card_network  "rupay" | "visa" | "mastercard" | "amex" (the card's network, when named)
    pincode       "400001"
    beneficiary   "Ravi" | "Priya Sharma" | "mom"
    date          "2026-11-25"  (relative words resolved against ``today``)
    otp           "123456"
    location      "Andheri"
    loan_type     "home" | "car" | "personal" | "education" | "gold"

How it works: the message is normalised, then every number that is *not* money is found
first and masked out — OTP codes, phone numbers, card and account references, pincodes in a
branch/ATM context, dates, times, durations, percentages, counts, years, long identifiers.
Only what is left can become an amount. A bare number becomes an amount only in a money
context ("send", "pay", "bhejo", "make it"…) or when the message is little more than that
number (the answer to "how much?"). A message that is just a 6-digit number yields ``otp``
(and ``pincode`` when it is a valid one): the dialogue takes whichever slot it is asking for.

Everything is regular expressions with bounded repetition over the (length-limited) message,
plus small tables: no models, no downloads, linear time.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from app.text.amounts import (
    CORRECTION,
    MONEY_CONTEXT,
    PREFIX_RE,
    Amount,
    choose_amount,
    has_currency_near,
)
from app.text.dates import extract_dates, extract_period
from app.text.names import extract_beneficiary
from app.text.places import extract_places
from app.text.preprocess import normalize
from app.text.scan import I, Message, closest_label
from app.text.script import romanise

_OTP_LABELLED = re.compile(
    r"\b(?:otp|one[\s-]?time[\s-]?(?:password|passcode|pin|code)|verification\s+code|passcode|(?<!pin\s)(?<!pin)(?<!postal\s)(?<!zip\s)code)\b"
    r"[^\d\n]{0,14}?(?<!\d)(\d{4,8})(?!\d)", I)
_OTP_BARE = re.compile(r"^\W{0,3}(\d{6})\W{0,3}$")
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\s?91[\s-]?|91[\s-]|0)?[6-9]\d{4}[\s-]?\d{5}(?!\d)"
    r"|(?<![\w+])(?:\+\s?91[\s-]?)?[6-9]\d{2}[\s-]\d{3}[\s-]\d{4}(?!\d)"
    r"|\b1800[\s-]?\d{3}[\s-]?\d{4}\b|\b0\d{2,4}[\s-]\d{6,8}\b")
_CARD_ENDING = re.compile(
    r"\b(?:ending|ends|ended|last\s+(?:4|four)(?:\s+digits?)?|last\s+digits?)"
    r"(?:\s{1,3}(?:in|with|are|is|of|number))*\s{0,3}[:#-]?\s{0,3}[x*•]{0,12}[\s-]{0,2}(\d{4})(?!\d)", I)
_CARD_MASKED = re.compile(r"\bcard\b(?:\s{1,3}(?:no\.?|number|num))?\s{0,3}[:#-]?\s{0,3}(?:[x*•]{2,8}[\s-]{0,2}){1,4}(\d{4})(?!\d)", I)
# A whole card number after "card" (any separators): its last four digits name the card.
_CARD_FULL = re.compile(r"\bcard\b(?:\s{1,3}(?:no\.?|number|num|is))*\s{0,3}[:#-]?\s{0,3}"
                        r"(\d(?:[ .\-/_]{0,3}\d){12,18})(?!\d)", I)
_CARD_PLAIN = re.compile(r"\bcard\b(?:\s{1,3}(?:no\.?|number|num))?\s{0,3}[:#-]?\s{0,3}(\d{4})"
                         r"(?![\d,.]|[ \-/_]{1,3}\d|\s{0,2}(?:k\b|rs|inr|rupee|lakh|thousand))", I)
_CARD_TYPE = re.compile(r"\b(debit|credit|atm)\s{1,3}(?:\w{1,15}\s{1,3})?cards?\b|\b(debit|credit)\s{0,3}cards?\b", I)
_ACCOUNT_DIGITS = re.compile(
    r"(?:\b(?:a/c|acct|acc|account|ac)\b|\ba/c)\.?(?:\s{0,3}(?:no|number|num)\b\.?)?(?:\s{1,3}is)?\s{0,3}[:#-]?\s{0,3}"
    r"(?:[x*•]{1,12}[\s-]{0,2})?(\d{4}(?:[ -]\d{4}){1,3}|\d{4,18})(?![\d,])", I)
_SAVINGS = re.compile(r"\b(?:savings?|sb\s+(?:a/c|account|acct)|bachat)\b", I)
_CURRENT = re.compile(
    r"\bcurrent\s{1,3}(?:account|a/c|acct|ac|khata)\b|\bchalu\s+khata\b"
    r"|\b(?:from|to|into|in|my|the|use)\s{1,3}(?:my\s{1,3})?current\b(?!\s{1,3}(?:balance|rate|interest|status|address|"
    r"location|month|year|time|limit|offer|offers|charges|emi|outstanding|plan|date|day|week|due))", I)
_LONG_DIGITS = re.compile(r"(?<![\d,])\d{9,}(?![\d,])|(?<!\d)\d{4}(?:[ -]\d{4}){2,3}(?:[ -]\d{1,3})?(?!\d)")
_PINCODE_LABELLED = re.compile(r"\b(?:pin\s?code|pincode|postal\s+code|zip(?:\s?code)?|pin)\b\s{0,3}(?:is\s{1,3})?[:#-]?\s{0,3}([1-9]\d{5})(?!\d)", I)
_SIX_DIGITS = re.compile(r"(?<![\d,.])([1-9]\d{5})(?![\d,]|\.\d)")
_LOCATION_CONTEXT = re.compile(
    r"\b(?:branch\w*|atms?|near|nearby|nearest|closest|around|area|locality|location|address|located|locate|"
    r"office|pincode|pin\s?code|postal|zip|where)\b", I)

_NOT_MONEY = [
    re.compile(r"(?<!\d)\d{1,2}(?::\d{2})?\s{0,2}(?:a\.?m\.?|p\.?m\.?)(?![a-z])|(?<!\d)\d{1,2}:\d{2}(?::\d{2})?(?!\d)|\b\d{1,2}\s?o'?clock\b", I),
    re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3})?\s{0,2}(?:%|percent\b|per\s+cent\b|pc\b|p\.a\.)", I),
    re.compile(r"(?<![\d,.])\d{1,4}\s{0,2}(?:years?|yrs?|months?|mths?|days?|weeks?|wks?|hours?|hrs?|minutes?|mins?|"
               r"seconds?|secs?|cards?|accounts?|transactions?|txns?|times|people|persons|items|installments?|"
               r"instalments?|emis|digits?|members?|branches|atms|cheques?|checks?|leaves|pages|saal|mahine|din)\b", I),
    re.compile(r"\b(?:in|of|since|during|year|fy|till|until|before|after|for\s+the\s+year)\s{1,3}(?:19|20)\d{2}(?:\s?-\s?\d{2,4})?\b"
               r"(?!\s{0,2}(?:k\b|rs|inr|rupe|₹|lakh|thousand|crore))", I),
    re.compile(r"(?<!\d)(?:19|20)\d{2}\s?-\s?\d{2}(?!\d)"),
    re.compile(r"(?<!\d)\d{1,2}(?:st|nd|rd|th)\b", I),
    re.compile(r"#\s{0,2}\d{1,12}(?:[\s-]\d{1,12}){0,3}|\b(?:option|step|item|point|no\.|number|order|ref|reference|ticket|"
               r"complaint|request|id)\s{0,2}[:#-]?\s{0,2}\d{1,12}(?!\d)", I),
    re.compile(r"(?<![\d.,])\d{1,4}(?=\s{0,2}(?:st|nd|rd|th)\b)", I),
]


_CARD_WORD = re.compile(r"\bcards?\b", I)
_ACCOUNT_WORD = re.compile(r"\b(?:a/c|acct|account|ac)\b|a/c", I)


def _extract_otp(msg: Message, found: dict[str, Any]) -> None:
    m = _OTP_BARE.match(msg.text)
    if m:
        found["otp"] = m.group(1)
        found["pincode"] = m.group(1)  # a bare 6-digit reply: the dialogue knows which it asked for
        msg.mask(m.start(1), m.end(1))
        return
    for m in _OTP_LABELLED.finditer(msg.work):
        found.setdefault("otp", m.group(1))
        msg.mask(m.start(1), m.end(1))


_CARD_NETWORK = re.compile(r"\b(rupay|visa|master\s?card|amex)\b", re.I)


def _extract_cards_and_accounts(msg: Message, found: dict[str, Any], money: bool) -> None:
    for m in _CARD_TYPE.finditer(msg.text):
        kind = (m.group(1) or m.group(2)).lower()
        found.setdefault("card_type", "debit" if kind == "atm" else kind)
        break
    if m := _CARD_NETWORK.search(msg.text):
        found.setdefault("card_network", re.sub(r"\s+", "", m.group(1).lower()).replace("master", "mastercard")
                         .replace("mastercardcard", "mastercard"))
    for m in _CARD_ENDING.finditer(msg.work):
        label = closest_label(msg.text, m.start(), {"card": _CARD_WORD, "account": _ACCOUNT_WORD}, 60)
        if label == "account":
            found.setdefault("account_ref", m.group(1))
        else:
            found.setdefault("card_last4", m.group(1))
        msg.mask(m.start(1), m.end(1))
    for m in _CARD_FULL.finditer(msg.work):
        # The last four of the number, never its first group (the issuer's BIN names no card).
        found.setdefault("card_last4", re.sub(r"\D", "", m.group(1))[-4:])
        msg.mask(m.start(1), m.end(1))
    for m in _CARD_MASKED.finditer(msg.work):
        found.setdefault("card_last4", m.group(1))
        msg.mask(m.start(1), m.end(1))
    if not money:
        for m in _CARD_PLAIN.finditer(msg.work):
            found.setdefault("card_last4", m.group(1))
            msg.mask(m.start(1), m.end(1))
    for m in _ACCOUNT_DIGITS.finditer(msg.work):
        digits = re.sub(r"\D", "", m.group(1))
        found.setdefault("account_ref", digits)
        msg.mask(m.start(1), m.end(1))
    kinds = [(m.start(), "savings") for m in _SAVINGS.finditer(msg.text)]
    kinds += [(m.start(), "current") for m in _CURRENT.finditer(msg.text)]
    if kinds:
        kinds.sort()
        # The source account ("from my savings") is the one a transfer or balance check is about.
        source = next((k for pos, k in kinds if re.search(r"\bfrom\s+(?:my\s+|the\s+)?$", msg.text[max(0, pos - 12):pos], I)), None)
        account_type = source or kinds[0][1]
        found.setdefault("account_type", account_type)
        found.setdefault("account_ref", account_type)


def _extract_pincode(msg: Message, found: dict[str, Any]) -> None:
    for m in _PINCODE_LABELLED.finditer(msg.work):
        found.setdefault("pincode", m.group(1))
        msg.mask(m.start(1), m.end(1))
    if _LOCATION_CONTEXT.search(msg.text):
        work = msg.work
        for m in _SIX_DIGITS.finditer(work):
            if not has_currency_near(work, m.start(1), m.end(1)):
                found.setdefault("pincode", m.group(1))
                msg.mask(m.start(1), m.end(1))


def _mask_non_money(msg: Message) -> None:
    work = msg.work
    for m in _PHONE.finditer(work):
        if not PREFIX_RE.search(work[max(0, m.start() - 10):m.start()]):
            msg.mask(m.start(), m.end())
    work = msg.work
    for m in _LONG_DIGITS.finditer(work):
        if not has_currency_near(work, m.start(), m.end()):
            msg.mask(m.start(), m.end())
    for pattern in _NOT_MONEY:
        for m in pattern.finditer(msg.work):
            msg.mask(m.start(), m.end())


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def _analyse(text: str, today: date | None) -> tuple[Message, dict[str, Any], bool]:
    # Devanagari is read in its Hinglish spelling, so one set of rules serves both scripts.
    msg = Message(romanise(normalize(text)))
    found: dict[str, Any] = {}
    # A correction ("no, make it 3000", "sorry, 1200 not 2100") is always about the amount.
    money = bool(MONEY_CONTEXT.search(msg.text) or CORRECTION.search(msg.text))
    _extract_otp(msg, found)
    _mask_non_money_phones(msg)
    _extract_cards_and_accounts(msg, found, money)
    _extract_pincode(msg, found)
    extract_dates(msg, found, today or date.today())
    _mask_non_money(msg)
    return msg, found, money


def _mask_non_money_phones(msg: Message) -> None:
    # Phones go first so "call me on 98200 12345" never reads as an account or an amount.
    work = msg.work
    for m in _PHONE.finditer(work):
        if not PREFIX_RE.search(work[max(0, m.start() - 10):m.start()]):
            msg.mask(m.start(), m.end())


def parse_amount(text: str, today: date | None = None) -> Amount | None:
    """The amount of money in ``text`` (INR unless a currency is named), or ``None``.

    Handles ``₹5,000``, ``Rs 1,20,000.50``, ``7500 INR``, ``5k``, ``1.5 lakh``, ``2 cr``,
    ``two thousand rupees``, ``twenty five hundred``, ``£50``, ``40€``, ``USD 20``,
    ``500 rupaye``, ``5 hazaar``… and ignores pincodes, card/account digits, OTPs, dates,
    years, times and phone numbers.
    """
    msg, _, money = _analyse(text, today)
    return choose_amount(msg, money)


def extract_entities(text: str, today: date | None = None) -> dict[str, Any]:
    """All entities found in ``text`` (keys as in the module docstring); never raises on odd input."""
    msg, found, money = _analyse(text, today)
    amount = choose_amount(msg, money)
    if amount is not None:
        found["amount"] = amount.to_dict()
    if "otp" in found and "pincode" in found and found["otp"] == found["pincode"] and _LOCATION_CONTEXT.search(msg.text):
        del found["otp"]
    extract_beneficiary(msg, found)
    extract_places(msg, found)
    period = extract_period(msg.text, today or date.today())
    if period:
        found["period"] = period
    return found
