"""Training runs into the provenance log: dataset records for every training file and one
model record, written once per log for each ``name@version`` (the graph links turns to the
model through ``model_versions`` values of that form)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

_lock = threading.Lock()
MARKER = "recorded-models.json"


def model_key(name: str, version: str) -> str:
    """The id a turn's ``model_versions`` uses to point at a model record."""
    return f"{name}@{version}"


def record_training(tracker: Any, name: str, version: str, *, datasets: dict[str, str],
                    hyperparameters: dict[str, Any] | None = None, metrics: dict[str, Any] | None = None,
                    git_commit: str | None = None, description: str = "") -> str:
    """Record ``datasets`` (path → SHA-256) and the model trained on them, unless this log
    already has ``name@version``; returns the model key."""
    key = model_key(name, version)
    marker = Path(tracker.folder) / MARKER
    with _lock:
        try:
            seen = set(json.loads(marker.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            seen = set()
        if key in seen:
            return key
        for path, sha in sorted(datasets.items()):
            tracker.record_dataset(path, description or f"training data of {name}", sha256=sha)
        tracker.record_model(name, version, hyperparameters=hyperparameters or {}, metrics=metrics or {},
                             dataset_hashes=sorted(datasets.values()), git_commit_id=git_commit)
        seen.add(key)
        marker.parent.mkdir(parents=True, exist_ok=True)
        tmp = marker.with_suffix(".tmp")
        tmp.write_text(json.dumps(sorted(seen)), encoding="utf-8")
        tmp.replace(marker)
    return key
