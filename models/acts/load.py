"""The dialogue-act model: :func:`prepare_acts` trains it from ``settings.acts_data`` (seconds) into
``$SAHAYAK_MODELS_HOME/acts`` when missing or when the data file changed (``sahayak prepare``);
:func:`get_acts` only loads it, once per process."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import numpy as np

from app.core.errors import NotPrepared
from app.core.fingerprint import file_sha256
from app.core.settings import Settings, get_settings
from models.acts.model import DialogueActClassifier, train_acts
from models.intents.encoder import get_encoder

log = logging.getLogger(__name__)
_lock = threading.Lock()
_loaded: dict[str, DialogueActClassifier] = {}


def acts_model_dir(settings: Settings) -> Path:
    return settings.models_dir / "acts"


def _embedder(settings: Settings):  # noqa: ANN202 - a callable texts -> array
    # The same int8 MiniLM the default intent model uses (one copy in memory, loaded once).
    encoder = get_encoder(settings.embedding_model, 64, True)
    return lambda texts: np.asarray(encoder.encode(list(texts)), dtype=np.float32)


def prepare_acts(settings: Settings | None = None) -> str:
    """Train the dialogue-act model when it is missing or its data changed (idempotent); a summary line."""
    settings = settings or get_settings()
    data = Path(settings.acts_data)
    out = acts_model_dir(settings)
    if _fresh(out, data):
        return f"dialogue-act model at {out} (current)"
    with _lock:
        model, metrics = train_acts(data, _embedder(settings))
        model.save(out)
        _loaded.pop(str(out.resolve()), None)
    return f"dialogue-act model trained → {out} (validation accuracy {metrics.get('val_accuracy', '—')})"


def get_acts(settings: Settings | None = None) -> DialogueActClassifier:
    """The dialogue-act model for ``settings`` (thread-safe; loaded once). Raises :class:`NotPrepared`
    when it was never trained; one trained on an older data file is served with a warning."""
    settings = settings or get_settings()
    data = Path(settings.acts_data)
    out = acts_model_dir(settings)
    key = str(out.resolve())
    with _lock:
        model = _loaded.get(key)
        if model is not None:
            return model
        if not (out / "config.json").exists():
            raise NotPrepared(f"no dialogue-act model at {out}: run `sahayak prepare`")
        if not _fresh(out, data):
            log.warning("the dialogue-act model at %s was trained on another %s; run `sahayak prepare` to retrain it",
                        out, data)
        model = DialogueActClassifier.load(out, _embedder(settings))
        _loaded[key] = model
        return model


def _fresh(out: Path, data: Path) -> bool:
    try:
        config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return config.get("data_sha256") == file_sha256(data)
