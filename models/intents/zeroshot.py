"""Approach 3: zero-shot by embedding similarity (no NLI model is available offline here).

``mode="descriptions"`` (default, truly zero-shot): each intent is represented by the MiniLM
embedding of its one-sentence description plus its name; a message scores its cosine
similarity to each. The labelled examples are used only to fit the temperature and the
Out_Of_Scope threshold (so the confidences are calibrated; the ranking is zero-shot).
``mode="centroids"`` (few-shot): the mean embedding of each intent's examples instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from app.core.errors import SahayakError
from models.intents.base import IntentClassifier
from models.intents.data import Dataset, stratified_split
from models.intents.encoder import get_encoder


class ZeroShotClassifier(IntentClassifier):
    approach = "zeroshot"

    def __init__(self, model_dir: Path, config: dict[str, Any]) -> None:
        super().__init__(model_dir, config)
        self.prototypes = np.load(Path(model_dir) / "prototypes.npz")["prototypes"].astype(np.float32)
        self.encoder = get_encoder(config.get("embedding_model"), int(config["max_length"]), bool(config["quantize"]))

    @property
    def batch_invariant(self) -> bool:
        # int8 activations are quantised with one scale per batch, so the other rows shift a text's scores
        return not self.encoder.quantize

    def _scores(self, texts: list[str]) -> np.ndarray:
        return self.encoder.encode(texts) @ self.prototypes.T  # cosine similarity (unit vectors)


def label_text(label: str, description: str) -> str:
    """What a label is embedded as: its readable name and its description."""
    name = label.replace("_", " ")
    return f"{name}: {description}" if description and description != name else name


def _normalise(m: np.ndarray) -> np.ndarray:
    return m / np.clip(np.linalg.norm(m, axis=1, keepdims=True), 1e-9, None)


def train_zeroshot(data: Dataset, out: Path, labels: list[str], fast: bool, seed: int, params: dict[str, Any]) -> dict[str, Any]:
    mode = params.get("mode", "descriptions")
    max_length, quantize = int(params.get("max_length", 64)), bool(params.get("quantize", True))
    encoder = get_encoder(params.get("embedding_model"), max_length, quantize)
    y = np.array([labels.index(lab) for lab in data.labels])
    if mode == "descriptions":
        protos = encoder.encode([label_text(lab, data.descriptions.get(lab, "")) for lab in labels])
        val_idx = np.arange(len(data))
        val_kind = "all labelled examples (never used to build the label embeddings)"
        x_val = encoder.encode(data.texts, progress=True)
    elif mode == "centroids":
        x = encoder.encode(data.texts, progress=True)
        tr, va = stratified_split(data.labels, 0.2, seed)
        val_idx = np.array(va)
        val_protos = _normalise(np.stack([x[tr][y[tr] == k].mean(0) for k in range(len(labels))]))
        x_val = x[val_idx]
        protos = _normalise(np.stack([x[y == k].mean(0) for k in range(len(labels))]))
        val_kind = f"stratified 20% hold-out (seed {seed}) scored against centroids of the other 80%"
    else:
        raise SahayakError(f"unknown zeroshot mode {mode!r} (descriptions | centroids)")
    np.savez(out / "prototypes.npz", prototypes=protos.astype(np.float32))
    val_logits = x_val @ (protos if mode == "descriptions" else val_protos).T
    return {
        "val_logits": val_logits,
        "val_y": y[val_idx],
        "val_kind": val_kind,
        "hyperparameters": {"mode": mode, "max_length": max_length, "quantize_int8": quantize},
        "config": {"max_length": max_length, "quantize": quantize, "mode": mode, "embedding_model": params.get("embedding_model")},
    }
