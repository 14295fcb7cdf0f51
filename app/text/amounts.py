"""Amounts of money in customers' words: digits with Indian grouping, symbols and currency words,
scale words (k, lakh, crore, hazaar), and numbers written in English or Hindi words.

Works on a :class:`~app.text.scan.ScanText` in which non-money numbers are already masked."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import yaml

from app.core.paths import DATA_DIR
from app.text.scan import I, Message


@dataclass(frozen=True)
class Amount:
    """A sum of money: a positive finite ``value`` in ``currency`` (ISO 4217 code)."""

    value: float
    currency: str = "INR"

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "currency": self.currency}


_SYMBOLS = {"₹": "INR", "$": "USD", "£": "GBP", "€": "EUR", "¥": "JPY"}
_CURRENCY_WORDS = {
    "rs": "INR", "inr": "INR", "rupee": "INR", "rupees": "INR", "rupaye": "INR", "rupaiye": "INR",
    "rupiya": "INR", "rupay": "INR", "rupiye": "INR", "usd": "USD", "dollar": "USD", "dollars": "USD",
    "bucks": "USD", "gbp": "GBP", "pound": "GBP", "pounds": "GBP", "quid": "GBP", "eur": "EUR",
    "euro": "EUR", "euros": "EUR", "aed": "AED", "dirham": "AED", "dirhams": "AED", "jpy": "JPY",
    "yen": "JPY", "sgd": "SGD", "paise": "INR", "paisa": "INR",
    "रुपये": "INR", "रुपए": "INR", "रुपया": "INR", "रु": "INR",
}
_SUBUNIT = {"paise", "paisa"}  # "50 paise" is half a rupee
_SCALES = {
    "k": 1e3, "thousand": 1e3, "thousands": 1e3, "hazaar": 1e3, "hazar": 1e3, "hajar": 1e3,
    "lakh": 1e5, "lakhs": 1e5, "lac": 1e5, "lacs": 1e5, "crore": 1e7, "crores": 1e7, "cr": 1e7,
    "million": 1e6, "mn": 1e6, "billion": 1e9, "bn": 1e9, "hundred": 1e2, "sau": 1e2,
    "l": 1e5, "lakh": 1e5, "laakh": 1e5, "karod": 1e7, "karor": 1e7,
}
UNITS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen".split())}
TENS = {w: 10 * (i + 2) for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split())}


def _hindi_number_words() -> tuple[dict[str, float], dict[str, float]]:
    """(romanised number word → value, modifier word → amount added to the next number), from
    ``data/lexicon/amount_words.yaml``; Devanagari arrives romanised, so only Latin spellings count."""
    raw = yaml.safe_load((DATA_DIR / "lexicon" / "amount_words.yaml").read_text(encoding="utf-8"))
    units = {str(w).lower(): float(v) for v, words in raw["cardinals"]["hinglish"].items() for w in words}
    modifiers: dict[str, float] = {}
    for spec in raw["fractions"].values():
        for w in spec.get("hinglish", []):
            if "value" in spec:
                units[str(w).lower()] = float(spec["value"])
            else:
                modifiers[str(w).lower()] = float(spec["add"])
    return units, modifiers


_HINDI_UNITS, _MODIFIERS = _hindi_number_words()

_NUM = r"\d{1,3}(?:,\d{2,3})+(?:\.\d{1,4})?|\d{1,20}(?:\.\d{1,4})?"
_NUM_RE = re.compile(rf"(?<![\d,])(?:{_NUM})(?![\d])")
PREFIX_RE = re.compile(r"(?:(?<![a-z])(rs|inr|usd|gbp|eur|aed|sgd|jpy|rupees|rupee)\.?|([₹$£€¥]))\s{0,2}$", I)
MULT_WORDS = r"k|thousands?|hazaa?r|hajar|laakh|lakhs?|lacs?|l|crores?|cr|karod|karor|million|mn|billion|bn|hundred|sau"
CUR_WORDS = (r"rs\.?|inr|rupees?|rupaye|rupaiye|rupiya|rupiye|rupay|bucks|dollars?|usd|pounds?|quid|gbp|"
              r"euros?|eur|aed|dirhams?|yen|jpy|sgd|paise|paisa|रुपये|रुपए|रुपया|रु\.?")
_SUFFIX_RE = re.compile(
    rf"(?:\s{{0,2}}(?P<mult>{MULT_WORDS})(?![a-z]))?(?:\s{{0,2}}(?P<cur>{CUR_WORDS})(?![a-z])|\s{{0,2}}(?P<sym>[₹$£€¥]))?", I)
_COMPOUND_RE = re.compile(rf"\s{{1,3}}(?:and\s{{1,3}})?(?P<num>\d{{1,3}}(?:\.\d{{1,2}})?)\s{{0,2}}(?P<mult>{MULT_WORDS})(?![a-z])", I)

MONEY_CONTEXT = re.compile(
    r"\b(?:send|sent|sending|schedule|transfer\w*|pay|paid|paying|payment|remit\w*|wire|give|bhej\w*|de\s+do|dedo|move|moving|shift|"
    r"amount|withdraw\w*|deposit\w*|loan|emi|borrow|lend|invest\w*|fd|rd|make\s+it|make\s+that|change\s+it|"
    r"instead|limit|spend|spent|charged?|refund\w*|cashback|worth|cost|price|fees?|salary|income|earn\w*|"
    r"how\s+much|rupees?|rupaye|paise|bucks|dollars?|pounds?|euros?|inr|rs|credit(?:ed)?|debit(?:ed)?|"
    r"balance|above|below|more\s+than|less\s+than|upto|up\s+to)\b|भेज|ट्रांसफर|रुपय|रुपए|पैसे|भुगतान", I)
CORRECTION = re.compile(r"\b(?:make\s+it|make\s+that|change\s+(?:it\s+)?to|instead|actually|rather|sorry|oops|wait|hold\s+on|galti|"
                         r"correction|i\s+meant|nahi|nahin)\b|^\s*no\b", I)
_NEGATED = re.compile(r"\b(?:not|nahi|nahin)\s{1,3}(?:rs\.?\s?|₹\s?)?$", I)

_WORD_TOKEN = re.compile(r"[a-z]+", I)
_NUMBER_WORDS = frozenset(UNITS) | frozenset(TENS) | frozenset(_HINDI_UNITS) | frozenset(_MODIFIERS) | frozenset(_SCALES)


def has_currency_near(work: str, start: int, end: int) -> bool:
    return bool(PREFIX_RE.search(work[max(0, start - 10):start])) or bool(
        (m := _SUFFIX_RE.match(work, end)) and (m.group("cur") or m.group("sym") or m.group("mult")))


@dataclass
class _Candidate:
    start: int
    end: int
    value: float
    currency: str
    strength: int  # 3 currency given, 2 scale word, 1 bare number in a money context, 0 bare reply
    negated: bool = False


def _digit_candidates(msg: Message, money: bool) -> list[_Candidate]:
    work = msg.work
    out: list[_Candidate] = []
    for m in _NUM_RE.finditer(work):
        s, e = m.start(), m.end()
        raw = m.group(0)
        if s >= 2 and work[s - 1] == "." and work[s - 2].isdigit():
            continue
        integer = raw.split(".")[0].replace(",", "")
        if len(integer) > 15:
            continue  # identifiers, not money
        prefix = PREFIX_RE.search(work[max(0, s - 10):s])
        if s > 0 and work[s - 1].isalpha() and not prefix:
            continue  # part of an identifier such as TXN2026
        suffix = _SUFFIX_RE.match(work, e)
        mult = suffix.group("mult") if suffix else None
        cur_word = suffix.group("cur") if suffix else None
        sym = suffix.group("sym") if suffix else None
        end = suffix.end() if suffix and suffix.end() > e else e
        if end < len(work) and (work[end].isalnum() and work[end - 1].isalnum()):
            continue  # "2nd", "5pm", "4g": the number runs into a word that is not money
        value = float(raw.replace(",", ""))
        if mult:
            scale = _SCALES[mult.lower()]
            value *= scale
            # "1 lakh 50 thousand", "2 crore 50 lakh"
            while True:
                c = _COMPOUND_RE.match(work, end)
                if not c or _SCALES[c.group("mult").lower()] >= scale:
                    break
                scale = _SCALES[c.group("mult").lower()]
                value += float(c.group("num")) * scale
                end = c.end()
                more = _SUFFIX_RE.match(work, end)
                if more and (more.group("cur") or more.group("sym")) and not more.group("mult"):
                    cur_word, sym, end = more.group("cur"), more.group("sym"), more.end()
        currency, strength = "INR", 2 if mult else 1
        if prefix:
            currency = _CURRENCY_WORDS.get(prefix.group(1).lower(), "INR") if prefix.group(1) else _SYMBOLS[prefix.group(2)]
            strength = 3
        elif cur_word or sym:
            word = cur_word.lower().rstrip(".") if cur_word else ""
            currency = _SYMBOLS[sym] if sym else _CURRENCY_WORDS.get(word, "INR")
            if word in _SUBUNIT:
                value /= 100
            strength = 3
        start = s - len(prefix.group(0)) if prefix else s
        if start > 0 and work[start - 1] in "-\u2212" and (start == 1 or not work[start - 2].isalnum()):
            continue  # "-500" is a negative number, never an amount to act on
        if strength == 1 and not money:
            strength = 0
        out.append(_Candidate(start, end, value, currency, strength, bool(_NEGATED.search(work[max(0, start - 12):start]))))
    return out


def _word_candidates(msg: Message) -> list[_Candidate]:
    """Amounts written in words: "two thousand rupees", "twenty five hundred", "paanch hazaar"."""
    work = msg.work
    out: list[_Candidate] = []
    tokens = list(_WORD_TOKEN.finditer(work))
    i = 0
    while i < len(tokens):
        run: list[re.Match[str]] = []
        j = i
        while j < len(tokens):
            w = tokens[j].group(0).lower()
            gap_ok = not run or re.fullmatch(r"[\s-]{1,3}", work[run[-1].end():tokens[j].start()]) is not None
            if not gap_ok:
                break
            nxt = tokens[j + 1].group(0).lower() if j + 1 < len(tokens) else ""
            if w in UNITS or w in TENS or w in _HINDI_UNITS or (w in _SCALES and w not in ("k", "l", "cr", "mn", "bn")):
                run.append(tokens[j])
            elif w in _MODIFIERS and (nxt in _HINDI_UNITS or nxt in _SCALES or nxt in UNITS):
                run.append(tokens[j])
            elif w == "and" and run and nxt in _NUMBER_WORDS:
                run.append(tokens[j])
            elif w == "a" and not run and nxt in _SCALES:
                run.append(tokens[j])
            else:
                break
            j += 1
        if not run:
            i += 1
            continue
        i = j
        words = [t.group(0).lower() for t in run]
        while words and words[-1] == "and":
            words.pop()
            run.pop()
        total, current, has_scale, hindi, modifier = 0.0, 0.0, False, False, 0.0
        for w in words:
            if w == "and":
                continue
            if w == "a":
                current = 1
            elif w in _MODIFIERS:
                modifier, hindi = _MODIFIERS[w], True  # applies to the number that follows
            elif w in UNITS:
                current += UNITS[w]
            elif w in TENS:
                current += TENS[w]
            elif w in _HINDI_UNITS:
                current += _HINDI_UNITS[w] + modifier
                modifier, hindi = 0.0, True
            else:
                # "sava lakh" is 1.25 lakh: a modifier with no number of its own modifies one.
                base = (current or 1) + modifier
                modifier, has_scale = 0.0, True
                if _SCALES[w] == 100:
                    current = base * 100
                else:
                    total += base * _SCALES[w]
                    current = 0
        value = total + current
        s, e = run[0].start(), run[-1].end()
        if value <= 0 or not msg.free(s, e):
            continue
        prefix = PREFIX_RE.search(work[max(0, s - 10):s])
        suffix = _SUFFIX_RE.match(work, e)
        cur = suffix.group("cur") or suffix.group("sym") if suffix else None
        if not (has_scale or prefix or cur):
            continue  # "one", "do" on their own are not money
        if hindi and not has_scale and not (prefix or cur):
            continue
        currency = "INR"
        if prefix:
            currency = _CURRENCY_WORDS.get((prefix.group(1) or "").lower(), _SYMBOLS.get(prefix.group(2) or "", "INR"))
        elif cur:
            word = cur.lower().rstrip(".")
            currency = _SYMBOLS.get(cur, _CURRENCY_WORDS.get(word, "INR"))
            if word in _SUBUNIT:
                value /= 100
        end = suffix.end() if suffix and cur else e
        out.append(_Candidate(s - (len(prefix.group(0)) if prefix else 0), end, value, currency,
                              3 if (prefix or cur) else 2))
    return out


def _is_bare_reply(msg: Message, cand: _Candidate) -> bool:
    """True when the message is little more than this number ("3000", "3000 only", "ok 2500")."""
    if len(msg.text) > 60:
        return False
    rest = (msg.text[:cand.start] + " " + msg.text[cand.end:]).lower()
    words = re.findall(r"[a-z]+", rest)
    return len(words) <= 2 and not re.search(r"\d", rest)


def choose_amount(msg: Message, money: bool) -> Amount | None:
    cands = [c for c in _digit_candidates(msg, money) + _word_candidates(msg)
             if math.isfinite(c.value) and c.value > 0]
    cands = [c for c in cands if c.strength > 0 or _is_bare_reply(msg, c)]
    if not cands:
        return None
    cands.sort(key=lambda c: c.start)
    positive = [c for c in cands if not c.negated] or cands
    if len(positive) > 1 and CORRECTION.search(msg.text):
        best = positive[-1]  # "no, make it 3000" / "not 2000, 3000 instead"
    else:
        best = max(positive, key=lambda c: (c.strength, -c.start))
    return Amount(round(best.value, 2), best.currency)
