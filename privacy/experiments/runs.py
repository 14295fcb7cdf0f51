"""All the seed's encrypted-learning reproductions in one report (``sahayak scoring experiments``, bench)."""

from __future__ import annotations

from typing import Any

from privacy.experiments.breast_cancer import reproduce
from privacy.experiments.encrypted_training import linear_toy, loan_logistic


def run_all(n: int = 256, epochs: int = 6) -> dict[str, Any]:
    """Every encrypted-training comparison plus the breast-cancer reproduction."""
    return {"linear_toy": linear_toy(), "loan_logistic": loan_logistic(n, epochs),
            "breast_cancer": reproduce(epochs=epochs)}
