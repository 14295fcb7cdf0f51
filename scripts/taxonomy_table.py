"""Write docs/taxonomy.md: every BANKING77 category and where Sahayak places it
(from data/taxonomy/banking77.yaml, the one source).

    python scripts/taxonomy_table.py [--check]
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def render() -> str:
    """The table's markdown."""
    raw = yaml.safe_load((ROOT / "data" / "taxonomy" / "banking77.yaml").read_text(encoding="utf-8"))
    cats: dict[str, dict] = raw["categories"]
    kb = {p.stem for p in (ROOT / "data" / "kb").glob("*.md")}
    by_intent = Counter(v["intent"] for v in cats.values())
    lines = [
        "# BANKING77 in Sahayak's taxonomy",
        "",
        f"Every one of BANKING77's {len(cats)} categories ({raw['source']}) is placed on a Sahayak task "
        "(a handler) or on the FAQ with the knowledge-base document that answers it. Categories that belong to "
        "a UK card fintech (top-ups, virtual and disposable cards, exchange) go to the closest Indian-bank "
        "equivalent, with a note. Generated from `data/taxonomy/banking77.yaml` by `scripts/taxonomy_table.py`; "
        "a test checks that the table, the map and the knowledge base agree.",
        "",
        "| tasks | categories |",
        "|---|---|",
        *[f"| `{intent}` | {n} |" for intent, n in sorted(by_intent.items(), key=lambda kv: (-kv[1], kv[0]))],
        "",
        "| BANKING77 category | Sahayak task | knowledge-base document | note |",
        "|---|---|---|---|",
    ]
    for name, v in sorted(cats.items()):
        topic = v.get("topic") or ""
        doc = f"[`{topic}`](../data/kb/{topic}.md)" if topic in kb else (f"`{topic}`" if topic else "")
        lines.append(f"| `{name}` | `{v['intent']}` | {doc} | {v.get('note', '')} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    """Write the table, or with ``--check`` exit 1 when docs/taxonomy.md is out of date."""
    text, out = render(), ROOT / "docs" / "taxonomy.md"
    if "--check" in sys.argv:
        sys.exit(0 if out.exists() and out.read_text(encoding="utf-8") == text else 1)
    out.write_text(text, encoding="utf-8")
    print(f"{out.relative_to(ROOT)} written")


if __name__ == "__main__":
    main()
