"""The product's intent model: :func:`prepare_classifier` trains it, :func:`get_classifier` loads it."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

from app.core.errors import NotPrepared, SahayakError
from app.core.settings import Settings, get_settings
from models.intents.base import IntentClassifier
from models.intents.data import Dataset, load_dataset
from models.intents.lineage import data_hashes
from models.intents.train import APPROACH_NAMES, load_model, train_model

__all__ = ["default_model_dir", "get_classifier", "prepare_classifier"]

log = logging.getLogger(__name__)
_lock = threading.Lock()
_loaded: dict[tuple[str, str], IntentClassifier] = {}


def default_model_dir(settings: Settings, approach: str | None = None) -> Path:
    """Where ``approach`` (default: ``settings.classifier``) is cached when no model dir is configured."""
    return settings.models_dir / f"intents-{approach or settings.classifier}"


def _is_stale(model_dir: Path, data: Dataset) -> bool:
    """True when the model was trained on different YAML files than the current ones."""
    try:
        lineage = json.loads((model_dir / "lineage.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True
    return lineage.get("training_files") != data_hashes(data)


def _approach(settings: Settings) -> str:
    approach = settings.classifier
    if approach not in APPROACH_NAMES:
        raise SahayakError(f"unknown classifier {approach!r} (SAHAYAK_CLASSIFIER); choose one of {', '.join(APPROACH_NAMES)}")
    return approach


def _model_dir(settings: Settings, approach: str) -> Path:
    return Path(settings.intent_model_dir) if settings.intent_model_dir is not None else default_model_dir(settings, approach)


def prepare_classifier(settings: Settings | None = None) -> str:
    """Train ``settings.classifier`` into its cache folder when it is missing or stale (idempotent).

    A configured ``SAHAYAK_INTENT_MODEL_DIR`` is the bank's own model: it is checked, never retrained.
    Returns a one-line summary for ``sahayak prepare``.
    """
    settings = settings or get_settings()
    approach = _approach(settings)
    model_dir = _model_dir(settings, approach)
    if settings.intent_model_dir is not None:
        if not (model_dir / "config.json").exists():
            raise NotPrepared(f"SAHAYAK_INTENT_MODEL_DIR={model_dir} holds no trained intent model "
                              f"(train one with `sahayak intents train --approach {approach} --out {model_dir}`)")
        return f"intent model {approach} at {model_dir} (configured)"
    data = load_dataset(settings.intent_data_dir)
    if (model_dir / "config.json").exists() and not _is_stale(model_dir, data):
        return f"intent model {approach} at {model_dir} (current)"
    with _lock:
        train_model(approach, data, model_dir, fast=True)
        _loaded.pop((approach, str(model_dir.resolve())), None)
    return f"intent model {approach} trained → {model_dir}"


def get_classifier(settings: Settings | None = None) -> IntentClassifier:
    """The process-wide classifier for ``settings.classifier`` (thread-safe; loaded once).

    Raises :class:`NotPrepared` when it was never trained; a model trained on older YAML data is
    served with a warning (it is what ``sahayak prepare`` last built).
    """
    settings = settings or get_settings()
    approach = _approach(settings)
    model_dir = _model_dir(settings, approach)
    key = (approach, str(model_dir.resolve()))
    with _lock:
        clf = _loaded.get(key)
        if clf is not None:
            return clf
        if not (model_dir / "config.json").exists():
            raise NotPrepared(f"no trained intent model ({approach}) at {model_dir}: run `sahayak prepare` "
                              f"(or `sahayak intents train --approach {approach} --out {model_dir}`)")
        if settings.intent_model_dir is None and _is_stale(model_dir, load_dataset(settings.intent_data_dir)):
            log.warning("the intent model at %s was trained on other data than %s; run `sahayak prepare` to retrain it",
                        model_dir, settings.intent_data_dir)
        clf = load_model(model_dir)
        _loaded[key] = clf
        return clf
