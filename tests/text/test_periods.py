"""Statement periods in customers' words resolve to calendar dates, never in the future."""

from __future__ import annotations

from datetime import date

import pytest

from app.text.dates import extract_period
from app.text.entities import extract_entities

TODAY = date(2026, 12, 2)


@pytest.mark.parametrize("text,start,end", [
    ("statement for last month", "2026-11-01", "2026-11-30"),
    ("pichhle mahine ka statement", "2026-11-01", "2026-11-30"),
    ("last 3 months statement please", "2026-09-02", "2026-12-02"),
    ("past 10 days transactions", "2026-11-22", "2026-12-02"),
    ("jan to march statement", "2026-01-01", "2026-03-31"),
    ("statement from october to november", "2026-10-01", "2026-11-30"),
    ("from nov 2025 to feb 2026", "2025-11-01", "2026-02-28"),
    ("statement for october", "2026-10-01", "2026-10-31"),
    ("statement for december", "2026-12-01", "2026-12-02"),  # the month in progress, up to today
    ("FY 2025-26 statement", "2025-04-01", "2026-03-31"),
    ("this month so far", "2026-12-01", "2026-12-02"),
    ("this year statement", "2026-01-01", "2026-12-02"),
])
def test_periods(text: str, start: str, end: str) -> None:
    assert extract_period(text, TODAY) == {"from": start, "to": end}


def test_no_period_and_devanagari() -> None:
    assert extract_period("send 500 to ravi", TODAY) is None
    assert extract_entities("पिछले 3 महीने का स्टेटमेंट", TODAY)["period"] == {"from": "2026-09-02", "to": "2026-12-02"}
