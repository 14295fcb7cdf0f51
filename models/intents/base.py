"""The classifier interface shared by every approach.

An approach implements ``_scores(texts) -> (n, k) logits``; this base class turns them into
calibrated probabilities (temperature scaling), applies the Out_Of_Scope threshold, and
builds the :class:`app.core.types.Classification` with ranking, entities and latency.
"""

from __future__ import annotations

import abc
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from app.core.types import Classification
from app.text.entities import extract_entities
from models.intents.calibration import apply_oos_threshold, softmax
from models.intents.data import OOS_LABEL


class IntentClassifier(abc.ABC):
    """Base class: calibrated, thresholded classification on top of an approach's raw scores.

    ``config`` is the model directory's ``config.json``: ``approach``, ``labels``,
    ``temperature``, ``oos_threshold`` and approach-specific keys.
    """

    approach = "base"

    def __init__(self, model_dir: Path, config: dict[str, Any]) -> None:
        self.model_dir = Path(model_dir)
        self.config = config
        self.labels: list[str] = list(config["labels"])
        self.temperature: float = float(config.get("temperature", 1.0))
        self.oos_threshold: float = float(config.get("oos_threshold", 0.0))
        self.oos_index: int | None = self.labels.index(OOS_LABEL) if OOS_LABEL in self.labels else None
        self.model_version: str = config.get("model_version", f"intents-{self.approach}")

    # --- to implement ---------------------------------------------------------------------
    @abc.abstractmethod
    def _scores(self, texts: list[str]) -> np.ndarray:
        """Uncalibrated logits, shape (len(texts), len(self.labels))."""

    # --- shared -------------------------------------------------------------------------
    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """Calibrated class probabilities (rows sum to 1)."""
        return softmax(self._scores(texts), self.temperature)

    def decide(self, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predicted class index and its confidence per row, after the OOS threshold rule.

        When a low-confidence in-scope guess is turned into Out_Of_Scope, the confidence
        reported is ``1 - p(top guess)``: the calibrated chance that the guess was wrong.
        """
        pred = apply_oos_threshold(probs, self.oos_index, self.oos_threshold)
        top = probs.argmax(axis=1)
        conf = np.where(pred == top, probs.max(axis=1), 1.0 - probs.max(axis=1))
        return pred, conf

    @property
    def batch_invariant(self) -> bool:
        """Whether a text scores the same whatever else is in its batch (see ``evaluate``)."""
        return True

    def classify(self, text: str, context: dict[str, Any] | None = None) -> Classification:
        """Classify one message. ``context`` (dialogue state) is accepted for API stability;
        the current approaches classify the message on its own."""
        t0 = time.perf_counter()
        probs = self.predict_proba([text])
        pred, conf = self.decide(probs)
        row = probs[0]
        top3 = np.argsort(-row)[:3]
        latency = (time.perf_counter() - t0) * 1000.0
        return Classification(
            intent=self.labels[int(pred[0])],
            confidence=float(np.clip(conf[0], 0.0, 1.0)),
            ranking=[(self.labels[int(i)], round(float(row[i]), 6)) for i in top3],
            entities=extract_entities(text),
            model_version=self.model_version,
            latency_ms=round(latency, 3),
        )

    def predict(self, texts: list[str]) -> list[tuple[str, float]]:
        """(intent, confidence) per text, batched (for evaluation)."""
        probs = self.predict_proba(texts)
        pred, conf = self.decide(probs)
        return [(self.labels[int(p)], float(c)) for p, c in zip(pred, conf)]


def read_config(model_dir: Path) -> dict[str, Any]:
    """The model directory's config.json."""
    return json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
