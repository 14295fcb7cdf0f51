"""Loan-eligibility scoring: the :class:`ScoringModel` (load / save / predict_proba / card) and its card.

``load_artifact(settings)`` is the model in use (a retrained one under ``models_dir/scoring`` or the
shipped ``artifacts/loan_lr.json``); ``models.scoring.train.train()`` fits a new one (not re-exported
here, so ``models.scoring.train`` stays the module). The product scores under encryption (:mod:`privacy`).
"""

from models.scoring.card import model_card
from models.scoring.model import ARTIFACT_NAME, SHIPPED_DIR, BankPart, ScoringModel, artifact_path, load_artifact

__all__ = ["ARTIFACT_NAME", "SHIPPED_DIR", "BankPart", "ScoringModel", "artifact_path", "load_artifact", "model_card"]
