"""BANKING77's 77 categories are all placed, on handlers that exist or knowledge-base documents
that exist, and the docs table is generated from the map."""

from __future__ import annotations

import subprocess
import sys

import yaml

from handlers.registry import all_handlers
from tests.conftest import ROOT

SHARED = ROOT.parent / "shared" / "datasets" / "banking77"


def _map() -> dict[str, dict]:
    return yaml.safe_load((ROOT / "data" / "taxonomy" / "banking77.yaml").read_text(encoding="utf-8"))["categories"]


def test_every_category_is_placed_on_a_handler_or_a_document() -> None:
    cats = _map()
    assert len(cats) == 77
    handlers = set(all_handlers())
    kb = {p.stem for p in (ROOT / "data" / "kb").glob("*.md")}
    for name, place in cats.items():
        assert place["intent"] in handlers, f"{name}: no handler {place['intent']}"
        if place["intent"] == "FAQ":
            assert place.get("topic") in kb, f"{name}: FAQ without a knowledge-base document ({place.get('topic')})"


def test_the_map_names_banking77s_own_categories() -> None:
    files = sorted(SHARED.glob("*.csv")) if SHARED.exists() else []
    if not files:  # the shared dataset is optional outside this workplace; the count above still holds
        return
    import csv

    with files[0].open(encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        col = "category" if "category" in (reader.fieldnames or []) else (reader.fieldnames or ["label"])[-1]
        labels = {row[col] for row in reader}
    assert labels == set(_map()), sorted(labels ^ set(_map()))


def test_docs_table_is_current() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "taxonomy_table.py"), "--check"], cwd=ROOT)
    assert out.returncode == 0, "docs/taxonomy.md is out of date: run python scripts/taxonomy_table.py"
