"""The process-wide dialogue-act model: trained from ``settings.acts_data`` on first use (seconds)
and cached under ``$SAHAYAK_MODELS_HOME/acts``; retrained when the data file changes."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np

from app.core.fingerprint import file_sha256
from app.core.settings import Settings, get_settings
from models.acts.model import DialogueActClassifier, train_acts
from models.intents.encoder import get_encoder

_lock = threading.Lock()
_loaded: dict[str, DialogueActClassifier] = {}


def acts_model_dir(settings: Settings) -> Path:
    return settings.models_dir / "acts"


def _embedder(settings: Settings):  # noqa: ANN202 - a callable texts -> array
    # The same int8 MiniLM the default intent model uses (one copy in memory, loaded once).
    encoder = get_encoder(settings.embedding_model, 64, True)
    return lambda texts: np.asarray(encoder.encode(list(texts)), dtype=np.float32)


def get_acts(settings: Settings | None = None) -> DialogueActClassifier:
    """The dialogue-act model for ``settings`` (thread-safe; trains once when missing or stale)."""
    settings = settings or get_settings()
    data = Path(settings.acts_data)
    out = acts_model_dir(settings)
    key = str(out.resolve())
    with _lock:
        model = _loaded.get(key)
        if model is not None:
            return model
        embed = _embedder(settings)
        if not _fresh(out, data):
            model, _metrics = train_acts(data, embed)
            model.save(out)
        model = DialogueActClassifier.load(out, embed)
        _loaded[key] = model
        return model


def _fresh(out: Path, data: Path) -> bool:
    try:
        config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return config.get("data_sha256") == file_sha256(data)
