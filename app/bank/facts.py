"""The bank's product facts (``data/bank_facts.yaml``): the one source for limits and rates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from app.core.paths import DATA_DIR

FACTS_PATH = DATA_DIR / "bank_facts.yaml"


def load_facts(path: Path = FACTS_PATH) -> dict[str, Any]:
    """The bank product facts (``data/bank_facts.yaml``), read afresh on each call."""
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)
