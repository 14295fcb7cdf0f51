"""Dates in customers' words: ISO and numeric dates, "25 Nov", "next friday", "kal", "in 3 days"."""

from __future__ import annotations

import calendar
import re
from datetime import date, timedelta
from typing import Any

from app.text.amounts import CUR_WORDS, MULT_WORDS
from app.text.scan import I, Message

_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_name) if m}
_MONTHS.update({m.lower(): i for i, m in enumerate(calendar.month_abbr) if m})
_MONTHS["sept"] = 9
_MONTH_RE = r"(?:january|february|march|april|may|june|july|august|september|october|november|december|jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec)"
_WEEKDAYS = {d.lower(): i for i, d in enumerate(calendar.day_name)}

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
    rf"\b(on\s{{1,3}}the|the|on)\s{{1,3}}(\d{{1,2}})(st|nd|rd|th)?\b(?!\s{{0,3}}(?:of\s)?\s{{0,3}}\d|\s{{0,2}}(?:{MULT_WORDS}|{CUR_WORDS})\b)", I)


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


def extract_dates(msg: Message, found: dict[str, Any], today: date) -> None:
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


# --- periods (account statements) ----------------------------------------------------------------

_PAST = r"(?:last|past|previous|prev|pichhle|pichle|pichhale|pichhla|pichla|pichhali|pichhli|pichli)"
_PERIOD_LAST_N = re.compile(
    rf"\b{_PAST}\s{{1,3}}(\d{{1,2}}|one|two|three|four|five|six|twelve|ek|do|teen|char|chhe)\s{{1,3}}"
    r"(months?|mahine|mahino|mahinon|mnths?|days?|din|weeks?|hafte|years?|saal)\b", I)
_PERIOD_LAST_ONE = re.compile(rf"\b{_PAST}\s{{1,3}}(month|mahine|mahina|week|hafte|year|saal|quarter)\b", I)
_PERIOD_THIS = re.compile(r"\b(?:this|current|is|iss)\s{1,3}(month|mahine|mahina|year|saal|quarter)\b", I)
_PERIOD_FY = re.compile(r"\b(?:fy|financial\s+year|f\.y\.)\s{0,3}((?:20)?\d{2})\s?[-/]\s?((?:20)?\d{2})\b", I)
_PERIOD_MONTHS = re.compile(
    rf"\b(?:from\s{{1,3}})?({_MONTH_RE})\w*\.?(?:\s{{1,3}}(\d{{4}}))?\s{{0,3}}(?:to|till|until|through|-|–|se)\s{{0,3}}"
    rf"({_MONTH_RE})\w*\.?(?:\s{{1,3}}(\d{{4}}))?(?:\s{{1,3}}tak)?\b", I)
_PERIOD_ONE_MONTH = re.compile(
    rf"\b(?:for|of|in|month\s+of|during)\s{{1,3}}({_MONTH_RE})\w*\.?(?:\s{{1,3}}(\d{{4}}))?\b|\b({_MONTH_RE})\w*\s{{1,3}}(?:ka|ki|ke)\b"
    rf"|\b({_MONTH_RE})\w*\s{{1,3}}(\d{{4}})\b", I)
_COUNT_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "twelve": 12, "ek": 1, "do": 2,
                "teen": 3, "char": 4, "chhe": 6}


def _month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def _months_back(today: date, n: int) -> date:
    year, month = today.year, today.month - n
    while month < 1:
        month += 12
        year -= 1
    return date(year, month, min(today.day, calendar.monthrange(year, month)[1]))


def _last_month_with(month: int, today: date) -> int:
    """The year of the most recent ``month`` that has started (statements look back, never ahead)."""
    return today.year if month <= today.month else today.year - 1


def _span(start: date, end: date, today: date) -> dict[str, str]:
    end = min(end, today)
    return {"from": start.isoformat(), "to": end.isoformat()}


def extract_period(text: str, today: date) -> dict[str, str] | None:
    """The period a statement request names, as ``{"from", "to"}`` ISO dates (never in the future):
    "last month", "last 3 months", "pichhle mahine", "this year", "Jan to March", "for October",
    "FY 2025-26"; None when the message names no period."""
    if m := _PERIOD_MONTHS.search(text):
        m1, m2 = _MONTHS[m.group(1).lower()[:3]], _MONTHS[m.group(3).lower()[:3]]
        y2 = int(m.group(4)) if m.group(4) else _last_month_with(m2, today)
        y1 = int(m.group(2)) if m.group(2) else (y2 if m1 <= m2 else y2 - 1)
        return _span(date(y1, m1, 1), _month_end(y2, m2), today)
    if m := _PERIOD_FY.search(text):
        start = int(m.group(1)) % 100 + 2000
        return _span(date(start, 4, 1), date(start + 1, 3, 31), today)
    if m := _PERIOD_LAST_N.search(text):
        raw, unit = m.group(1).lower(), m.group(2).lower()
        n = int(raw) if raw.isdigit() else _COUNT_WORDS[raw]
        if unit.startswith(("month", "mahin", "mnth")):
            return _span(_months_back(today, n), today, today)
        if unit.startswith(("week", "haft")):
            return _span(today - timedelta(weeks=n), today, today)
        if unit.startswith(("year", "saal")):
            return _span(_months_back(today, 12 * n), today, today)
        return _span(today - timedelta(days=n), today, today)
    if m := _PERIOD_LAST_ONE.search(text):
        unit = m.group(1).lower()
        if unit.startswith(("month", "mahin")):
            prev = _months_back(today.replace(day=1), 1)
            return _span(prev, _month_end(prev.year, prev.month), today)
        if unit.startswith(("week", "haft")):
            return _span(today - timedelta(days=today.weekday() + 7), today - timedelta(days=today.weekday() + 1), today)
        if unit == "quarter":
            return _span(_months_back(today, 3), today, today)
        return _span(date(today.year - 1, 1, 1), date(today.year - 1, 12, 31), today)
    if m := _PERIOD_THIS.search(text):
        unit = m.group(1).lower()
        if unit.startswith(("month", "mahin")):
            return _span(today.replace(day=1), today, today)
        if unit == "quarter":
            q = (today.month - 1) // 3 * 3 + 1
            return _span(date(today.year, q, 1), today, today)
        return _span(date(today.year, 1, 1), today, today)
    if m := _PERIOD_ONE_MONTH.search(text):
        name = next(g for g in (m.group(1), m.group(3), m.group(4)) if g).lower()
        month = _MONTHS.get(name) or _MONTHS[name[:3]]
        year_text = m.group(2) or m.group(5)
        year = int(year_text) if year_text else _last_month_with(month, today)
        return _span(date(year, month, 1), _month_end(year, month), today)
    return None
