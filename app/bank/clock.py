"""Time in the bank: aware UTC now, the Indian calendar day, and dated references.

The "day" of the daily transfer limit is the calendar day in India (IST, UTC+05:30), and
references (``TXN261124BE199B34``, ``APP-…``, ``HO-…``) carry the IST date they were made.
"""

from __future__ import annotations

import secrets
from datetime import date, datetime, timedelta, timezone
from datetime import time as dtime

IST = timezone(timedelta(hours=5, minutes=30), name="IST")


def utcnow() -> datetime:
    """Now, as an aware UTC datetime."""
    return datetime.now(timezone.utc)


def ist_day_start(moment: datetime) -> datetime:
    """Start (as UTC) of the IST calendar day containing ``moment``."""
    local: date = moment.astimezone(IST).date()
    return datetime.combine(local, dtime(0, 0), tzinfo=IST).astimezone(timezone.utc)


def new_reference(prefix: str, now: datetime) -> str:
    """``<prefix><yymmdd in IST><8 random hex digits>``, e.g. ``TXN261124BE199B34``."""
    return f"{prefix}{now.astimezone(IST):%y%m%d}{secrets.token_hex(4).upper()}"
