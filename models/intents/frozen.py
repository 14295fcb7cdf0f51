"""Approach 1 (baseline and fallback): frozen MiniLM embeddings + multinomial logistic regression.

Optionally (default for the project's intents) the embedding is concatenated with character
2–4-gram TF-IDF features: they catch typos ("blance") and romanised Hindi ("bhejo", "khata")
that the English MiniLM embeds poorly, for well under a millisecond per query.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from models.intents.base import IntentClassifier
from models.intents.calibration import nll
from models.intents.data import Dataset
from models.intents.encoder import get_encoder


class FrozenClassifier(IntentClassifier):
    """Embeds with the (int8) MiniLM encoder and scores with a linear head stored as numpy arrays."""

    approach = "frozen"

    def __init__(self, model_dir: Path, config: dict[str, Any]) -> None:
        super().__init__(model_dir, config)
        head = np.load(Path(model_dir) / "head.npz")
        self.encoder = get_encoder(config.get("embedding_model"), int(config["max_length"]), bool(config["quantize"]))
        coef = head["coef"].astype(np.float32)  # (k, dim [+ n_char_features])
        self.coef = coef[:, : self.encoder.dim]
        self.char_coef = coef[:, self.encoder.dim :].T.copy() if coef.shape[1] > self.encoder.dim else None
        self.intercept = head["intercept"].astype(np.float32)  # (k,)
        self.char = None
        if self.char_coef is not None:
            vocab = json.loads((Path(model_dir) / "char_vocab.json").read_text(encoding="utf-8"))
            self.char = _char_vectorizer(vocab, head["idf"])
            self.char_weight = float(config.get("char_weight", 0.5))
        self.encoder.encode(["warm up"])  # first forward allocates; keep that off the first chat turn

    @property
    def batch_invariant(self) -> bool:
        # int8 activations are quantised with one scale per batch, so the other rows shift a text's scores
        return not self.encoder.quantize

    def _scores(self, texts: list[str]) -> np.ndarray:
        x = self.encoder.encode(texts)
        scores = x @ self.coef.T + self.intercept
        if self.char is not None:
            scores = scores + self.char_weight * np.asarray(self.char.transform(texts) @ self.char_coef)
        return scores


CHAR_NGRAMS = (2, 4)


def _char_vectorizer(vocabulary: dict[str, int] | None = None, idf: np.ndarray | None = None):  # noqa: ANN202
    """Character n-gram TF-IDF; rebuilt from its vocabulary and idf (no pickles in model dirs)."""
    from sklearn.feature_extraction.text import TfidfVectorizer  # heavy: sklearn (~0.7 s), only with char n-grams

    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=CHAR_NGRAMS, sublinear_tf=True, lowercase=True,
                          min_df=1 if vocabulary else 2, vocabulary=vocabulary, dtype=np.float32)
    if vocabulary is not None and idf is not None:
        vec.idf_ = idf
    return vec


def _fit_lr(x: np.ndarray, y: np.ndarray, c: float, seed: int):  # noqa: ANN202 - sklearn estimator
    from sklearn.linear_model import LogisticRegression  # heavy: sklearn, only training fits a head

    return LogisticRegression(C=c, max_iter=3000, random_state=seed).fit(x, y)


def _full_head(clf, k: int) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    """(k, dim) weights and (k,) biases whose softmax equals the fitted model's probabilities.

    A binary model stores one weight row (softmax over [0, w·x+b] is its sigmoid), and a fold
    may lack a rare label entirely (its logit is pinned very low).
    """
    coef = np.zeros((k, clf.coef_.shape[1]))
    intercept = np.full(k, -1e4)
    if len(clf.classes_) == 2:
        coef[clf.classes_[1]] = clf.coef_[0]
        intercept[clf.classes_] = [0.0, clf.intercept_[0]]
    else:
        coef[clf.classes_] = clf.coef_
        intercept[clf.classes_] = clf.intercept_
    return coef, intercept


def train_frozen(data: Dataset, out: Path, labels: list[str], fast: bool, seed: int, params: dict[str, Any]) -> dict[str, Any]:
    """Fit the head; return validation logits (out-of-fold, so every row is used) for calibration.

    C is chosen by 5-fold cross-validated log-loss from a small grid (one value in fast mode);
    the final head is refit on all rows.
    """
    from sklearn.model_selection import StratifiedKFold  # heavy: sklearn, only training

    max_length = int(params.get("max_length", 64))
    quantize = bool(params.get("quantize", True))
    encoder = get_encoder(params.get("embedding_model"), max_length, quantize)
    x = encoder.encode(data.texts, progress=True)
    use_char = bool(params.get("char_ngrams", True))
    char_weight = float(params.get("char_weight", 0.5))
    vec = None
    if use_char:
        import scipy.sparse as sp  # heavy: scipy (~0.15 s), only training

        vec = _char_vectorizer().fit(data.texts)
        x = sp.hstack([sp.csr_matrix(x), char_weight * vec.transform(data.texts)]).tocsr()
    y = np.array([labels.index(lab) for lab in data.labels])
    grid = [float(params["C"])] if "C" in params else [float(c) for c in params.get("C_grid", [32.0] if fast else [8.0, 32.0, 128.0])]
    n_splits = int(params.get("cv_folds", 3 if fast else 5))
    min_count = int(np.bincount(y).min())
    folds = list(StratifiedKFold(n_splits=max(2, min(n_splits, min_count)), shuffle=True, random_state=seed).split(x, y))
    best: tuple[float, float, np.ndarray] | None = None
    for c in grid:
        oof = np.zeros((len(y), len(labels)), dtype=np.float64)
        for tr, va in folds:
            clf = _fit_lr(x[tr], y[tr], c, seed)
            # classes_ may miss a label in a tiny fold: scatter into the full label space.
            coef, intercept = _full_head(clf, len(labels))
            oof[va] = np.asarray(x[va] @ coef.T) + intercept
        score = nll(oof, y, 1.0)
        if best is None or score < best[1]:
            best = (c, score, oof)
    assert best is not None
    c, _, oof = best
    final = _fit_lr(x, y, c, seed)
    coef, intercept = _full_head(final, len(labels))
    arrays = {"coef": coef.astype(np.float32), "intercept": intercept.astype(np.float32)}
    if vec is not None:
        arrays["idf"] = vec.idf_.astype(np.float32)
        vocab = {k: int(v) for k, v in vec.vocabulary_.items()}
        (out / "char_vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    np.savez(out / "head.npz", **arrays)
    return {
        "val_logits": oof,
        "val_y": y,
        "val_kind": f"{len(folds)}-fold out-of-fold predictions on the training data",
        "hyperparameters": {"C": c, "C_grid": grid, "max_length": max_length, "quantize_int8": quantize,
                            "cv_folds": len(folds), "solver": "lbfgs", "seed": seed,
                            "char_ngrams": list(CHAR_NGRAMS) if use_char else None, "char_weight": char_weight},
        "config": {"max_length": max_length, "quantize": quantize, "embedding_model": params.get("embedding_model"),
                   "char_weight": char_weight, "char_ngrams": use_char},
    }
