from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.money import format_money, group_indian, to_decimal


@pytest.mark.parametrize(
    "value, expected",
    [
        (0, "₹0.00"),
        (5, "₹5.00"),
        (999, "₹999.00"),
        (1000, "₹1,000.00"),
        (12000, "₹12,000.00"),
        (125000, "₹1,25,000.00"),
        ("2500.5", "₹2,500.50"),
        (12345678.9, "₹1,23,45,678.90"),
        (-4000, "-₹4,000.00"),
    ],
)
def test_inr_uses_indian_grouping(value, expected):
    assert format_money(value) == expected


def test_other_currencies_use_their_symbol():
    assert format_money(1234.5, "USD") == "$1,234.50"
    assert format_money(50, "GBP") == "£50.00"


def test_to_decimal_rejects_non_finite():
    for bad in ("nan", "inf", "abc", None):
        with pytest.raises(ValueError):
            to_decimal(bad)


@given(st.integers(min_value=0, max_value=10**15))
def test_grouping_keeps_digits(n):
    grouped = group_indian(str(n))
    assert grouped.replace(",", "") == str(n)
    parts = grouped.split(",")
    assert len(parts[-1]) <= 3 and all(len(p) == 2 for p in parts[1:-1])


@given(st.decimals(min_value=-10**12, max_value=10**12, places=2, allow_nan=False))
def test_format_round_trips(d):
    text = format_money(d).replace("₹", "").replace(",", "")
    assert Decimal(text) == to_decimal(d)
