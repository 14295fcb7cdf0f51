"""Entity extraction for banking messages: amounts, accounts, cards, dates, places, people.

:func:`extract_entities` returns a dict with any of these keys (see docs/architecture.md)::

    amount        {"value": 2500.0, "currency": "INR"}
    account_ref   "savings" | "current" | digits of an account number ("1234")
    account_type  "savings" | "current"
    card_last4    "4321"
    card_type     "debit" | "credit"
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

import calendar
import math
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from app.text.preprocess import normalize

I = re.IGNORECASE
_MASK = "\u2591"  # stands in for masked text: not a digit, letter or space


@dataclass(frozen=True)
class Amount:
    """A sum of money: a positive finite ``value`` in ``currency`` (ISO 4217 code)."""

    value: float
    currency: str = "INR"

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "currency": self.currency}


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------

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
}
_UNITS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen".split())}
_TENS = {w: 10 * (i + 2) for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split())}
_HINDI_UNITS = {"ek": 1, "do": 2, "teen": 3, "char": 4, "chaar": 4, "paanch": 5, "panch": 5, "chhe": 6,
                "saat": 7, "aath": 8, "nau": 9, "das": 10, "bees": 20, "pachaas": 50, "pachas": 50}

LOCATIONS: dict[str, str] = {
    # areas first: a message naming an area and its city is about the area
    "navi mumbai": "Navi Mumbai", "andheri": "Andheri", "bandra": "Bandra", "fort": "Fort",
    "colaba": "Colaba", "powai": "Powai", "dadar": "Dadar", "borivali": "Borivali", "thane": "Thane",
    "vashi": "Vashi", "nerul": "Nerul", "belapur": "Belapur", "cbd belapur": "Belapur",
    "kharghar": "Kharghar", "shivajinagar": "Shivajinagar", "shivaji nagar": "Shivajinagar",
    "kothrud": "Kothrud", "hinjewadi": "Hinjewadi", "hinjawadi": "Hinjewadi", "viman nagar": "Viman Nagar",
    "koregaon park": "Koregaon Park", "connaught place": "Connaught Place", "karol bagh": "Karol Bagh",
    "saket": "Saket", "dwarka": "Dwarka", "rohini": "Rohini", "juhu": "Juhu", "malad": "Malad",
    "goregaon": "Goregaon", "kurla": "Kurla", "chembur": "Chembur", "worli": "Worli", "lower parel": "Lower Parel",
    "ghatkopar": "Ghatkopar", "mulund": "Mulund", "panvel": "Panvel", "aundh": "Aundh", "baner": "Baner",
    "hadapsar": "Hadapsar", "wakad": "Wakad", "lajpat nagar": "Lajpat Nagar", "vasant kunj": "Vasant Kunj",
    "chandni chowk": "Chandni Chowk", "noida": "Noida", "gurgaon": "Gurugram", "gurugram": "Gurugram",
}
CITIES: dict[str, str] = {
    "mumbai": "Mumbai", "bombay": "Mumbai", "pune": "Pune", "new delhi": "New Delhi", "delhi": "Delhi",
    "bengaluru": "Bengaluru", "bangalore": "Bengaluru", "chennai": "Chennai", "kolkata": "Kolkata",
    "hyderabad": "Hyderabad", "ahmedabad": "Ahmedabad",
}
_RELATIONS = frozenset(
    """mom mum mother mummy mummyji maa ma amma dad father papa daddy pitaji wife husband brother bro sister
    sis son daughter friend uncle aunt aunty auntie bhai bhaiya didi landlord landlady boss grandma grandpa
    grandmother grandfather nani nana dadi dada beta beti cousin chacha chachi mama mami""".split()
)
_NAME_STOP = frozenset(
    """from on by via using through for today tomorrow tonight now please pls plz at with and ko account
    accounts a/c acct savings saving current my our your his her their the a an this that it me myself self
    rs inr rupees rupee immediately right asap upi neft imps rtgs urgently urgent every each monthly weekly
    daily next in of as is was be bhejo bhej do karo kar de dena send transfer pay money amount him them us
    someone somebody anyone bank bill bills emi emis loan card cards credit debit rent fees fee tax then also
    only instead just again back yesterday kal aaj sir madam maam ok okay thanks thank thankyou you i we he
    she they what how when where why which who can could will would should may might must shall want need
    beneficiary payee balance statement cash fund funds same some more less new old via mobile number phone
    wallet paytm gpay phonepe bhim ki ka ke ne se hai hain tha thi to""".split()
) | frozenset(_UNITS) | frozenset(_TENS) | frozenset(calendar.month_name[1:]).union(
    m.lower() for m in calendar.month_name[1:]) | frozenset(d.lower() for d in calendar.day_name)

_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_name) if m}
_MONTHS.update({m.lower(): i for i, m in enumerate(calendar.month_abbr) if m})
_MONTHS["sept"] = 9
_MONTH_RE = r"(?:january|february|march|april|may|june|july|august|september|october|november|december|jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec)"
_WEEKDAYS = {d.lower(): i for i, d in enumerate(calendar.day_name)}

# ---------------------------------------------------------------------------------------------
# Patterns (all bounded: no nested unbounded repetition)
# ---------------------------------------------------------------------------------------------

_NUM = r"\d{1,3}(?:,\d{2,3})+(?:\.\d{1,4})?|\d{1,20}(?:\.\d{1,4})?"
_NUM_RE = re.compile(rf"(?<![\d,])(?:{_NUM})(?![\d])")
_PREFIX_RE = re.compile(r"(?:(?<![a-z])(rs|inr|usd|gbp|eur|aed|sgd|jpy|rupees|rupee)\.?|([₹$£€¥]))\s{0,2}$", I)
_MULT_WORDS = r"k|thousands?|hazaa?r|hajar|lakhs?|lacs?|crores?|cr|million|mn|billion|bn|hundred|sau"
_CUR_WORDS = (r"rs\.?|inr|rupees?|rupaye|rupaiye|rupiya|rupiye|rupay|bucks|dollars?|usd|pounds?|quid|gbp|"
              r"euros?|eur|aed|dirhams?|yen|jpy|sgd|paise|paisa|रुपये|रुपए|रुपया|रु\.?")
_SUFFIX_RE = re.compile(
    rf"(?:\s{{0,2}}(?P<mult>{_MULT_WORDS})(?![a-z]))?(?:\s{{0,2}}(?P<cur>{_CUR_WORDS})(?![a-z])|\s{{0,2}}(?P<sym>[₹$£€¥]))?", I)
_COMPOUND_RE = re.compile(rf"\s{{1,3}}(?:and\s{{1,3}})?(?P<num>\d{{1,3}}(?:\.\d{{1,2}})?)\s{{0,2}}(?P<mult>{_MULT_WORDS})(?![a-z])", I)

_MONEY_CONTEXT = re.compile(
    r"\b(?:send|sent|sending|schedule|transfer\w*|pay|paid|paying|payment|remit\w*|wire|give|bhej\w*|de\s+do|dedo|"
    r"amount|withdraw\w*|deposit\w*|loan|emi|borrow|lend|invest\w*|fd|rd|make\s+it|make\s+that|change\s+it|"
    r"instead|limit|spend|spent|charged?|refund\w*|cashback|worth|cost|price|fees?|salary|income|earn\w*|"
    r"how\s+much|rupees?|rupaye|paise|bucks|dollars?|pounds?|euros?|inr|rs|credit(?:ed)?|debit(?:ed)?|"
    r"balance|above|below|more\s+than|less\s+than|upto|up\s+to)\b|भेज|ट्रांसफर|रुपय|रुपए|पैसे|भुगतान", I)
_CORRECTION = re.compile(r"\b(?:make\s+it|make\s+that|change\s+(?:it\s+)?to|instead|actually|rather|sorry|"
                         r"correction|i\s+meant|nahi|nahin)\b|^\s*no\b", I)
_NEGATED = re.compile(r"\b(?:not|nahi|nahin)\s{1,3}(?:rs\.?\s?|₹\s?)?$", I)

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
_CARD_PLAIN = re.compile(r"\bcard\b(?:\s{1,3}(?:no\.?|number|num))?\s{0,3}[:#-]?\s{0,3}(\d{4})(?![\d,.]|\s{0,2}(?:k\b|rs|inr|rupee|lakh|thousand))", I)
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

_DATE_ISO = re.compile(r"(?<!\d)(\d{4})-(\d{1,2})-(\d{1,2})(?!\d)")
_DATE_NUMERIC = re.compile(r"(?<![\d.,])(\d{1,2})([/.-])(\d{1,2})(?:\2(\d{4}|\d{2}))?(?![\d/])")
_DATE_DAY_MONTH = re.compile(
    rf"\b(\d{{1,2}})(?:st|nd|rd|th)?(?:\s{{1,3}}of)?[\s-]{{1,3}}({_MONTH_RE})\b\.?(?:,?[\s-]{{1,3}}(\d{{4}})\b)?", I)
_DATE_MONTH_DAY = re.compile(rf"\b({_MONTH_RE})\.?\s{{1,3}}(\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s{{1,3}}(\d{{4}})\b)?", I)
_DATE_RELATIVE = re.compile(
    r"\b(?:day\s+after\s+tomorrow|parso|parson|tomorrow|tmrw|tmr|kal|today|aaj|tonight|yesterday)\b", I)
_DATE_IN_DAYS = re.compile(r"\b(?:in|after)\s{1,3}(\d{1,3})\s{1,3}days?\b|\b(\d{1,3})\s{1,3}days?\s{1,3}(?:later|from\s+now)\b", I)
_DATE_WEEKDAY = re.compile(r"\b(?:(?:next|this|coming)\s{1,3})?(monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b", I)
_DATE_ORDINAL = re.compile(
    rf"\b(on\s{{1,3}}the|the|on)\s{{1,3}}(\d{{1,2}})(st|nd|rd|th)?\b(?!\s{{0,3}}(?:of\s)?\s{{0,3}}\d|\s{{0,2}}(?:{_MULT_WORDS}|{_CUR_WORDS})\b)", I)

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
_WORD_TOKEN = re.compile(r"[a-z]+", I)
_NUMBER_WORDS = frozenset(_UNITS) | frozenset(_TENS) | frozenset(_HINDI_UNITS) | frozenset(_SCALES)


# ---------------------------------------------------------------------------------------------
# The analysis of one message
# ---------------------------------------------------------------------------------------------


class _Message:
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
                out.append(_MASK * (end - start))
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
        return _MASK not in self._work[start:end]


def _has_currency_near(work: str, start: int, end: int) -> bool:
    return bool(_PREFIX_RE.search(work[max(0, start - 10):start])) or bool(
        (m := _SUFFIX_RE.match(work, end)) and (m.group("cur") or m.group("sym") or m.group("mult")))


def _closest_label(text: str, start: int, labels: dict[str, re.Pattern[str]], window: int = 40) -> str | None:
    """The label whose last mention ends closest before ``start`` (within ``window`` characters)."""
    before = text[max(0, start - window):start]
    best, best_pos = None, -1
    for name, pattern in labels.items():
        for m in pattern.finditer(before):
            if m.end() > best_pos:
                best, best_pos = name, m.end()
    return best


_CARD_WORD = re.compile(r"\bcards?\b", I)
_ACCOUNT_WORD = re.compile(r"\b(?:a/c|acct|account|ac)\b|a/c", I)


def _extract_otp(msg: _Message, found: dict[str, Any]) -> None:
    m = _OTP_BARE.match(msg.text)
    if m:
        found["otp"] = m.group(1)
        found["pincode"] = m.group(1)  # a bare 6-digit reply: the dialogue knows which it asked for
        msg.mask(m.start(1), m.end(1))
        return
    for m in _OTP_LABELLED.finditer(msg.work):
        found.setdefault("otp", m.group(1))
        msg.mask(m.start(1), m.end(1))


def _extract_cards_and_accounts(msg: _Message, found: dict[str, Any], money: bool) -> None:
    for m in _CARD_TYPE.finditer(msg.text):
        kind = (m.group(1) or m.group(2)).lower()
        found.setdefault("card_type", "debit" if kind == "atm" else kind)
        break
    for m in _CARD_ENDING.finditer(msg.work):
        label = _closest_label(msg.text, m.start(), {"card": _CARD_WORD, "account": _ACCOUNT_WORD}, 60)
        if label == "account":
            found.setdefault("account_ref", m.group(1))
        else:
            found.setdefault("card_last4", m.group(1))
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


def _extract_pincode(msg: _Message, found: dict[str, Any]) -> None:
    for m in _PINCODE_LABELLED.finditer(msg.work):
        found.setdefault("pincode", m.group(1))
        msg.mask(m.start(1), m.end(1))
    if _LOCATION_CONTEXT.search(msg.text):
        work = msg.work
        for m in _SIX_DIGITS.finditer(work):
            if not _has_currency_near(work, m.start(1), m.end(1)):
                found.setdefault("pincode", m.group(1))
                msg.mask(m.start(1), m.end(1))


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _upcoming(today: date, month: int, day: int) -> date | None:
    """The next ``day``/``month`` on or after ``today`` (leap days can be up to 8 years away)."""
    for year in range(today.year, today.year + 9):
        d = _safe_date(year, month, day)
        if d is not None and d >= today:
            return d
    return None


def _upcoming_day_of_month(today: date, day: int) -> date | None:
    """The next date with day-of-month ``day`` on or after ``today``."""
    if not 1 <= day <= 31:
        return None
    year, month = today.year, today.month
    for _ in range(13):
        d = _safe_date(year, month, day)
        if d is not None and d >= today:
            return d
        month += 1
        if month > 12:
            year, month = year + 1, 1
    return None


def _year(text: str | None) -> int | None:
    if not text:
        return None
    y = int(text)
    return 2000 + y if y < 100 else y


def _extract_dates(msg: _Message, found: dict[str, Any], today: date) -> None:
    hits: list[tuple[int, date | None]] = []

    def take(m: re.Match[str], value: date | None, group: int = 0) -> None:
        if msg.free(m.start(group), m.end(group)):
            hits.append((m.start(), value))
            msg.mask(m.start(group), m.end(group))

    for m in _DATE_ISO.finditer(msg.work):
        take(m, _safe_date(int(m.group(1)), int(m.group(2)), int(m.group(3))))
    for m in _DATE_DAY_MONTH.finditer(msg.work):
        day, month, year = int(m.group(1)), _MONTHS[m.group(2).lower()], _year(m.group(3))
        take(m, _safe_date(year, month, day) if year else _upcoming(today, month, day))
    for m in _DATE_MONTH_DAY.finditer(msg.work):
        day, month, year = int(m.group(2)), _MONTHS[m.group(1).lower()], _year(m.group(3))
        take(m, _safe_date(year, month, day) if year else _upcoming(today, month, day))
    for m in _DATE_NUMERIC.finditer(msg.work):
        sep, year = m.group(2), _year(m.group(4))
        if sep != "/" and year is None:
            continue  # "15.08" is a decimal and "10-20" a range; only "15/08" is a bare date
        day, month = int(m.group(1)), int(m.group(3))
        take(m, _safe_date(year, month, day) if year else _upcoming(today, month, day))
    for m in _DATE_RELATIVE.finditer(msg.work):
        word = m.group(0).lower()
        if word.startswith("day") or word.startswith("pars"):
            offset = 2
        elif word in ("tomorrow", "tmrw", "tmr", "kal"):
            offset = 1
        elif word == "yesterday":
            offset = -1
        else:
            offset = 0
        take(m, today + timedelta(days=offset))
    for m in _DATE_IN_DAYS.finditer(msg.work):
        take(m, today + timedelta(days=int(m.group(1) or m.group(2))))
    for m in _DATE_WEEKDAY.finditer(msg.work):
        wanted = _WEEKDAYS[m.group(1).lower()]
        ahead = (wanted - today.weekday()) % 7 or 7
        take(m, today + timedelta(days=ahead))
    for m in _DATE_ORDINAL.finditer(msg.work):
        if m.group(3) is None and not re.fullmatch(r"on\s+the", m.group(1), I):
            continue  # "the 5", "on 5" are not dates; "on the 5", "the 5th", "on 5th" are
        take(m, _upcoming_day_of_month(today, int(m.group(2))), 0)
    valid = sorted((pos, d) for pos, d in hits if d is not None)
    if valid:
        found["date"] = valid[0][1].isoformat()


def _mask_non_money(msg: _Message) -> None:
    work = msg.work
    for m in _PHONE.finditer(work):
        if not _PREFIX_RE.search(work[max(0, m.start() - 10):m.start()]):
            msg.mask(m.start(), m.end())
    work = msg.work
    for m in _LONG_DIGITS.finditer(work):
        if not _has_currency_near(work, m.start(), m.end()):
            msg.mask(m.start(), m.end())
    for pattern in _NOT_MONEY:
        for m in pattern.finditer(msg.work):
            msg.mask(m.start(), m.end())


@dataclass
class _Candidate:
    start: int
    end: int
    value: float
    currency: str
    strength: int  # 3 currency given, 2 scale word, 1 bare number in a money context, 0 bare reply
    negated: bool = False


def _digit_candidates(msg: _Message, money: bool) -> list[_Candidate]:
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
        prefix = _PREFIX_RE.search(work[max(0, s - 10):s])
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


def _word_candidates(msg: _Message) -> list[_Candidate]:
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
            if w in _UNITS or w in _TENS or w in _HINDI_UNITS or (w in _SCALES and w not in ("k", "cr", "mn", "bn")):
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
        total, current, has_scale, hindi = 0.0, 0.0, False, False
        for w in words:
            if w == "and":
                continue
            if w == "a":
                current = 1
            elif w in _UNITS:
                current += _UNITS[w]
            elif w in _TENS:
                current += _TENS[w]
            elif w in _HINDI_UNITS:
                current += _HINDI_UNITS[w]
                hindi = True
            elif _SCALES[w] == 100:
                current = (current or 1) * 100
                has_scale = True
            else:
                total += (current or 1) * _SCALES[w]
                current = 0
                has_scale = True
        value = total + current
        s, e = run[0].start(), run[-1].end()
        if value <= 0 or not msg.free(s, e):
            continue
        prefix = _PREFIX_RE.search(work[max(0, s - 10):s])
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


def _is_bare_reply(msg: _Message, cand: _Candidate) -> bool:
    """True when the message is little more than this number ("3000", "3000 only", "ok 2500")."""
    if len(msg.text) > 60:
        return False
    rest = (msg.text[:cand.start] + " " + msg.text[cand.end:]).lower()
    words = re.findall(r"[a-z]+", rest)
    return len(words) <= 2 and not re.search(r"\d", rest)


def _choose_amount(msg: _Message, money: bool) -> Amount | None:
    cands = [c for c in _digit_candidates(msg, money) + _word_candidates(msg)
             if math.isfinite(c.value) and c.value > 0]
    cands = [c for c in cands if c.strength > 0 or _is_bare_reply(msg, c)]
    if not cands:
        return None
    cands.sort(key=lambda c: c.start)
    positive = [c for c in cands if not c.negated] or cands
    if len(positive) > 1 and _CORRECTION.search(msg.text):
        best = positive[-1]  # "no, make it 3000" / "not 2000, 3000 instead"
    else:
        best = max(positive, key=lambda c: (c.strength, -c.start))
    return Amount(round(best.value, 2), best.currency)


# --- beneficiary ---------------------------------------------------------------------------------

_NAME = r"[A-Za-z][A-Za-z.'’-]{0,30}"
_PAY_VERB = r"(?:send|sent|transfer|transferring|pay|paying|remit|wire|give|credit|move|schedule)"
_TO_NAME = re.compile(rf"\b(?:to|for)\s{{1,3}}((?:{_NAME})(?:\s{{1,3}}{_NAME}){{0,3}})", I)
_VERB_NAME_AMOUNT = re.compile(
    rf"\b(?:pay|send|transfer|give)\s{{1,3}}((?:{_NAME})(?:\s{{1,3}}{_NAME}){{0,2}})\s{{0,3}}(?=[₹$£€]|rs\.?\s?\d|inr\s?\d|usd\s?\d|\d)", I)
_KO_NAME = re.compile(rf"((?:{_NAME}\s{{1,3}})?{_NAME})\s{{1,3}}ko\b", I)
_PAYEE_NAME = re.compile(
    rf"\b(?:beneficiary|payee)(?:\s{{1,3}}name)?\s{{0,3}}(?:is|:|-)\s{{0,3}}((?:{_NAME})(?:\s{{1,3}}{_NAME}){{0,2}})"
    rf"|\badd\s{{1,3}}((?:{_NAME})(?:\s{{1,3}}{_NAME}){{0,2}})\s{{1,3}}as\s{{1,3}}(?:a\s{{1,3}})?(?:new\s{{1,3}})?(?:beneficiary|payee)", I)
_PAY_CONTEXT = re.compile(rf"\b{_PAY_VERB}\b|\bbhej\w*|\bde\s+do\b|\bdedo\b|\bbhejo\b|भेज|ट्रांसफर|भुगतान", I)
_KO_NAME_DEVANAGARI = re.compile(r"(?<![\u0900-\u097f])([\u0900-\u097f]{2,20})\s{1,3}को(?![\u0900-\u097f])")
_DEVANAGARI_STOP = frozenset("मुझे मुझको उसको उनको इसको इनको हमको किसको सबको आपको".split())


def _clean_name(words: list[str]) -> str | None:
    """Take the leading name words, skipping possessives, stopping at the first non-name word."""
    words = [w.strip(".'’-") for w in words]
    while words and words[0].lower() in ("my", "our", "his", "her", "their", "the", "dear"):
        words = words[1:]
    if not words:
        return None
    if words[0].lower() in _RELATIONS:
        # "my friend Ravi" names Ravi; "my mom" is the payee's nickname as saved
        if len(words) > 1 and words[1][:1].isupper() and words[1].lower() not in _NAME_STOP:
            words = words[1:]
        else:
            return words[0].lower()
    name: list[str] = []
    for w in words:
        if not w or w.lower() in _NAME_STOP or w.lower() in LOCATIONS or w.lower() in CITIES:
            break
        name.append(w)
    if not name:
        return None
    # "ravi" and "RAVI" → "Ravi"; mixed case as typed ("McKenzie") is kept.
    return " ".join(w if any(ch.isupper() for ch in w) and not (w.isupper() and len(w) >= 3) else w.capitalize()
                    for w in name)


def _extract_beneficiary(msg: _Message, found: dict[str, Any]) -> None:
    text = msg.text
    for m in _PAYEE_NAME.finditer(text):
        name = _clean_name((m.group(1) or m.group(2)).split())
        if name:
            found["beneficiary"] = name
            return
    if not _PAY_CONTEXT.search(text):
        return
    for m in _VERB_NAME_AMOUNT.finditer(text):
        words = m.group(1).split()
        if words and words[0].lower() not in _NAME_STOP:
            name = _clean_name(words)
            if name:
                found["beneficiary"] = name
                return
    verb = _PAY_CONTEXT.search(text)
    for m in _TO_NAME.finditer(text, verb.start() if verb else 0):
        words = m.group(1).split()
        if words and words[0].lower() in ("my", "the") and len(words) > 1 and words[1].lower() in (
                "savings", "saving", "current", "account", "own", "other", "fd", "rd", "wallet"):
            continue  # "to my savings": an own-account transfer, not a payee
        name = _clean_name(words)
        if name:
            found["beneficiary"] = name
            return
    for m in _KO_NAME_DEVANAGARI.finditer(text):
        if m.group(1) not in _DEVANAGARI_STOP:
            found["beneficiary"] = m.group(1)
            return
    for m in _KO_NAME.finditer(text):
        words = m.group(1).split()
        if len(words) == 2 and not (words[0][:1].isupper() and words[1][:1].isupper()):
            words = words[1:]
        if words[0].lower() in ("mujhe", "usko", "unko", "isko", "inko", "sabko", "kisko", "hum", "humko", "mujhko"):
            continue
        name = _clean_name(words)
        if name:
            found["beneficiary"] = name
            return


# --- location and loan type --------------------------------------------------------------------

def _place_regex(names: dict[str, str]) -> re.Pattern[str]:
    alternatives = sorted(names, key=len, reverse=True)
    return re.compile(r"\b(" + "|".join(re.escape(a).replace(r"\ ", r"\s{1,3}") for a in alternatives) + r")\b", I)


_AREA_RE = _place_regex(LOCATIONS)
_CITY_RE = _place_regex(CITIES)
_LOAN_KEYS = {"home": "home", "house": "home", "housing": "home", "mortgage": "home", "ghar": "home",
              "property": "home", "car": "car", "auto": "car", "vehicle": "car", "bike": "car",
              "two-wheeler": "car", "gaadi": "car", "personal": "personal", "education": "education",
              "educational": "education", "student": "education", "study": "education", "studies": "education",
              "padhai": "education", "gold": "gold", "sona": "gold"}
_LOAN_KEY_RE = r"(home|house|housing|mortgage|ghar|property|car|auto|vehicle|bike|two-wheeler|gaadi|personal|education|educational|student|study|studies|padhai|gold|sona)"
_LOAN_RE = re.compile(
    rf"\b{_LOAN_KEY_RE}\b(?:\W{{1,3}}\w{{1,15}}){{0,3}}?\W{{1,3}}loans?\b|\bloans?\b(?:\W{{1,3}}\w{{1,15}}){{0,3}}?\W{{1,3}}{_LOAN_KEY_RE}\b"
    r"|\b(mortgage)\b", I)


def _extract_places(msg: _Message, found: dict[str, Any]) -> None:
    m = _AREA_RE.search(msg.text) or _CITY_RE.search(msg.text)
    if m:
        key = re.sub(r"\s+", " ", m.group(1).lower())
        found["location"] = LOCATIONS.get(key) or CITIES[key]
    m = _LOAN_RE.search(msg.text)
    if m:
        key = next(g for g in m.groups() if g)
        found["loan_type"] = _LOAN_KEYS[key.lower()]


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def _analyse(text: str, today: date | None) -> tuple[_Message, dict[str, Any], bool]:
    msg = _Message(normalize(text))
    found: dict[str, Any] = {}
    # A correction ("no, make it 3000", "sorry, 1200 not 2100") is always about the amount.
    money = bool(_MONEY_CONTEXT.search(msg.text) or _CORRECTION.search(msg.text))
    _extract_otp(msg, found)
    _mask_non_money_phones(msg)
    _extract_cards_and_accounts(msg, found, money)
    _extract_pincode(msg, found)
    _extract_dates(msg, found, today or date.today())
    _mask_non_money(msg)
    return msg, found, money


def _mask_non_money_phones(msg: _Message) -> None:
    # Phones go first so "call me on 98200 12345" never reads as an account or an amount.
    work = msg.work
    for m in _PHONE.finditer(work):
        if not _PREFIX_RE.search(work[max(0, m.start() - 10):m.start()]):
            msg.mask(m.start(), m.end())


def parse_amount(text: str, today: date | None = None) -> Amount | None:
    """The amount of money in ``text`` (INR unless a currency is named), or ``None``.

    Handles ``₹5,000``, ``Rs 1,20,000.50``, ``7500 INR``, ``5k``, ``1.5 lakh``, ``2 cr``,
    ``two thousand rupees``, ``twenty five hundred``, ``£50``, ``40€``, ``USD 20``,
    ``500 rupaye``, ``5 hazaar``… and ignores pincodes, card/account digits, OTPs, dates,
    years, times and phone numbers.
    """
    msg, _, money = _analyse(text, today)
    return _choose_amount(msg, money)


def extract_entities(text: str, today: date | None = None) -> dict[str, Any]:
    """All entities found in ``text`` (keys as in the module docstring); never raises on odd input."""
    msg, found, money = _analyse(text, today)
    amount = _choose_amount(msg, money)
    if amount is not None:
        found["amount"] = amount.to_dict()
    if "otp" in found and "pincode" in found and found["otp"] == found["pincode"] and _LOCATION_CONTEXT.search(msg.text):
        del found["otp"]
    _extract_beneficiary(msg, found)
    _extract_places(msg, found)
    return found
