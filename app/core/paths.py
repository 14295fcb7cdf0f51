"""Where the code and its shipped data live (never derived from the current folder).

The shipped data (intents, KB, bank facts, responses, lexicons) sits next to the code in
``data/``. ``SAHAYAK_DATA_DIR`` points at another copy (an operator's edited KB, a read-only
volume); it is read once, at import, so set it before the process starts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

# app/core/paths.py → the checkout (or the installed source tree) is two folders up.
REPO_ROOT = Path(__file__).resolve().parents[2]


def data_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """The shipped-data folder: ``$SAHAYAK_DATA_DIR`` (made absolute) when set, else ``<code>/data``."""
    override = environ.get("SAHAYAK_DATA_DIR", "").strip()
    return Path(override).expanduser().resolve() if override else REPO_ROOT / "data"


DATA_DIR = data_dir()


def restarts_path(home: Path) -> Path:
    """Where ``sahayak run``'s supervisor keeps each component's restart count (the chat's /metrics reads it)."""
    return Path(home) / "logs" / "restarts.json"
