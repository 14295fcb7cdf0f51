"""Stable JSON, hashing and timestamps shared by every provenance module.

Signatures are over bytes, so the exact serialisation is part of the format:
sorted keys, no insignificant whitespace, UTF-8 (non-ASCII kept as is), and no NaN.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import date, datetime, timezone
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

SCHEMA_VERSION = "2.0"
SEED_SCHEMA_VERSION = "1.1"


def _default(obj: Any) -> Any:
    """Turn the few non-JSON types the pipeline passes into stable JSON values."""
    if isinstance(obj, datetime):
        return iso_utc(obj)
    if isinstance(obj, date):
        return obj.isoformat()
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=str)
    if isinstance(obj, bytes):
        return b64e(obj)
    if hasattr(obj, "model_dump"):  # pydantic models
        return obj.model_dump(mode="json")
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    raise TypeError(f"cannot serialise {type(obj).__name__} in a provenance record")


def stable_json(obj: Any) -> str:
    """The canonical JSON text of ``obj`` (sorted keys, compact separators)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_default)


def sha256_hex(data: bytes | str) -> str:
    """Hex SHA-256 of bytes (strings are UTF-8 encoded first)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def iso_utc(ts: datetime | None = None) -> str:
    """ISO-8601 timestamp in UTC with an explicit offset (naive datetimes are taken as UTC)."""
    ts = ts or datetime.now(timezone.utc)
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    return ts.astimezone(timezone.utc).isoformat(timespec="microseconds")


def b64e(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64d(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)
