"""Intent classification: one interface, four selectable approaches.

``get_classifier(settings)`` returns the approach named by ``settings.classifier``
(frozen | finetune | zeroshot | llm), loaded once per process from ``settings.intent_model_dir``
or trained automatically the first time into ``settings.models_dir / "intents-<approach>"``
(fast configuration; retrained when the YAML data changes).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from models.intents.base import IntentClassifier
from models.intents.data import OOS_LABEL, Dataset, load_dataset
from models.intents.lineage import data_hashes, training_record
from models.intents.train import APPROACH_NAMES, APPROACHES, PRESETS, evaluate, load_model, train_model

if TYPE_CHECKING:
    from app.core.settings import Settings

__all__ = [
    "APPROACHES", "APPROACH_NAMES", "PRESETS", "OOS_LABEL", "Dataset", "IntentClassifier", "evaluate", "get_classifier", "load_dataset",
    "load_model", "train_model", "training_record", "default_model_dir",
]

_lock = threading.Lock()
_loaded: dict[tuple[str, str], IntentClassifier] = {}


def default_model_dir(settings: "Settings", approach: str | None = None) -> Path:
    """Where ``approach`` (default: ``settings.classifier``) is cached when no model dir is configured."""
    return settings.models_dir / f"intents-{approach or settings.classifier}"


def _is_stale(model_dir: Path, data: Dataset) -> bool:
    """True when the model was trained on different YAML files than the current ones."""
    try:
        lineage = json.loads((model_dir / "lineage.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True
    return lineage.get("training_files") != data_hashes(data)


def get_classifier(settings: "Settings | None" = None) -> IntentClassifier:
    """The process-wide classifier for ``settings.classifier`` (thread-safe; loads/trains once)."""
    from app.core.errors import SahayakError
    from app.core.settings import get_settings

    settings = settings or get_settings()
    approach = settings.classifier
    if approach not in APPROACH_NAMES:
        raise SahayakError(f"unknown classifier {approach!r} (SAHAYAK_CLASSIFIER); choose one of {', '.join(APPROACH_NAMES)}")
    explicit = settings.intent_model_dir is not None
    model_dir = Path(settings.intent_model_dir) if explicit else default_model_dir(settings, approach)
    key = (approach, str(model_dir.resolve()))
    with _lock:
        clf = _loaded.get(key)
        if clf is not None:
            return clf
        if explicit:
            clf = load_model(model_dir)
        else:
            data = load_dataset(settings.intent_data_dir)
            if not (model_dir / "config.json").exists() or _is_stale(model_dir, data):
                train_model(approach, data, model_dir, fast=True)
            clf = load_model(model_dir)
        _loaded[key] = clf
        return clf
