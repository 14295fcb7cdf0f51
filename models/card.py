"""One model-card shape for every model family: a :class:`ModelCard` rendered from one template.

The intent classifier, the cross-encoder reranker and the loan-scoring model each build a
``ModelCard`` from their own training record and write it as ``model_card.md`` next to the
weights (sentence-transformers style: one card shape, whatever the family). A card states only
what the record says; a value the record lacks is written as "not recorded".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["CARD_NAME", "NOT_RECORDED", "ModelCard", "recorded"]

CARD_NAME = "model_card.md"
NOT_RECORDED = "not recorded"

# The one template. Sections every card has, in a fixed order; family-specific sections go
# between the metrics and the limitations.
_TEMPLATE = """# {title} `{version}`

**Trained:** {trained_at} from commit `{git_commit}` in {train_seconds} s.{provenance}

## Intended use
{intended_use}

## Model
{model}

## Training data
{data}

## {metrics_heading}
{metrics}
{extra}
## Limitations
{limitations}
"""


def recorded(value: Any) -> str:
    """``value`` as card text, or "not recorded" when the record lacks it."""
    return NOT_RECORDED if value is None or value == "" else str(value)


@dataclass(frozen=True)
class ModelCard:
    """What a model card says, family by family (Markdown in each text field)."""

    title: str
    version: Any
    trained_at: Any
    git_commit: Any
    train_seconds: Any
    intended_use: str
    model: str
    data: str
    metrics: str
    limitations: list[str]
    metrics_heading: str = "Metrics"
    provenance: str = ""  # a sentence after the "Trained" line (how it was made, from which record)
    extra: list[tuple[str, str]] = field(default_factory=list)  # (heading, body) family-specific sections

    def render(self) -> str:
        """The card as Markdown, from the one template."""
        extra = "".join(f"\n## {heading}\n{body.rstrip()}\n" for heading, body in self.extra)
        return _TEMPLATE.format(
            title=self.title, version=recorded(self.version), trained_at=recorded(self.trained_at),
            git_commit=recorded(self.git_commit), train_seconds=recorded(self.train_seconds),
            provenance=f" {self.provenance.strip()}" if self.provenance.strip() else "",
            intended_use=self.intended_use.strip(), model=self.model.strip(), data=self.data.strip(),
            metrics_heading=self.metrics_heading, metrics=self.metrics.strip(), extra=extra,
            limitations="\n".join(f"- {item.strip()}" for item in self.limitations),
        )

    def save(self, directory: str | Path) -> Path:
        """Write ``model_card.md`` into ``directory`` and return its path."""
        path = Path(directory) / CARD_NAME
        path.write_text(self.render(), encoding="utf-8")
        return path
