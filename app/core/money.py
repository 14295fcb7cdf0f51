"""Money helpers: Decimal amounts and Indian-style formatting (₹1,25,000.00)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

SYMBOLS = {"INR": "₹", "USD": "$", "GBP": "£", "EUR": "€"}


def to_decimal(value: object) -> Decimal:
    """Parse ``value`` as a 2-decimal amount; raises ValueError for non-finite input."""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise ValueError(f"not an amount: {value!r}") from exc
    if not amount.is_finite():
        raise ValueError(f"not an amount: {value!r}")
    return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def group_indian(digits: str) -> str:
    """Group an integer string the Indian way: 12345678 → 1,23,45,678."""
    if len(digits) <= 3:
        return digits
    head, tail = digits[:-3], digits[-3:]
    parts = []
    while len(head) > 2:
        parts.insert(0, head[-2:])
        head = head[:-2]
    if head:
        parts.insert(0, head)
    return ",".join(parts) + "," + tail


def format_money(value: object, currency: str = "INR") -> str:
    """``₹1,25,000.00`` for INR; other currencies get their symbol and western grouping."""
    amount = to_decimal(value)
    sign = "-" if amount < 0 else ""
    whole, frac = f"{abs(amount):.2f}".split(".")
    if currency == "INR":
        body = group_indian(whole)
    else:
        body = f"{int(whole):,}"
    return f"{sign}{SYMBOLS.get(currency, currency + ' ')}{body}.{frac}"
