"""The seed's "logistic regression on encrypted medical data", on scikit-learn's bundled
breast-cancer dataset (569 samples, 30 features; shipped inside scikit-learn, no download).

Two parts: encrypted *evaluation* of a plaintext-trained model with the same protocol as loan
scoring (30 standardised features zero-padded to 32 slots, rotation keys 1…16 only, encrypted
logit, exact sigmoid after decryption) and encrypted *training* (privacy.experiments.encrypted_training),
each compared with plaintext in the same run. TenSEAL and scikit-learn are heavy, so they are
imported inside the functions (`sahayak` imports this module on every start).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from privacy import ckks
from privacy.experiments.encrypted_training import logistic_comparison


def load_split(seed: int = 0, test_fraction: float = 0.2) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stratified train/test split, standardised with the training statistics."""
    from sklearn.datasets import load_breast_cancer  # heavy: deferred (module docstring)
    from sklearn.model_selection import train_test_split

    X, y = load_breast_cancer(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y.astype(float), test_size=test_fraction, random_state=seed, stratify=y)
    mean, std = Xtr.mean(0), Xtr.std(0)
    return (Xtr - mean) / std, (Xte - mean) / std, ytr, yte


def encrypted_evaluation(Xtr: np.ndarray, Xte: np.ndarray, ytr: np.ndarray, yte: np.ndarray) -> dict[str, Any]:
    """Train in plaintext, score the test set under encryption sample by sample."""
    import tenseal as ts  # heavy: deferred (module docstring)
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(max_iter=2000).fit(Xtr, ytr)
    slots = 1 << (Xtr.shape[1] - 1).bit_length()  # 30 → 32
    keys = ckks.generate_keys("logit", steps=tuple(1 << i for i in range(slots.bit_length() - 1)))
    server = ts.context_from(keys.public_bytes)  # evaluator side: no secret key
    w = np.zeros(slots)
    w[: Xtr.shape[1]] = clf.coef_[0]
    b = float(clf.intercept_[0])
    enc_p, plain_ms, enc_ms = [], [], []
    for row in Xte:
        t = time.perf_counter()
        padded = np.zeros(slots)
        padded[: len(row)] = row
        blob = ts.ckks_vector(keys.private, padded.tolist()).serialize()
        out = ts.ckks_vector_from(server, blob).dot(w.tolist())
        out.add_(b)
        enc_p.append(float(ckks.sigmoid(ts.ckks_vector_from(keys.private, out.serialize()).decrypt()[0])))
        enc_ms.append((time.perf_counter() - t) * 1e3)
        t = time.perf_counter()
        float(ckks.sigmoid(row @ clf.coef_[0] + b))
        plain_ms.append((time.perf_counter() - t) * 1e3)
    enc_p_a = np.asarray(enc_p)
    ref = clf.predict_proba(Xte)[:, 1]
    return {"test_accuracy_plaintext": float(np.mean((ref >= 0.5) == (yte == 1))),
            "test_accuracy_encrypted": float(np.mean((enc_p_a >= 0.5) == (yte == 1))),
            "max_abs_error": float(np.max(np.abs(enc_p_a - ref))),
            "decision_agreement": float(np.mean((enc_p_a >= 0.5) == (ref >= 0.5))),
            "encrypted_ms_p50": round(float(np.median(enc_ms)), 3),
            "plaintext_ms_p50": round(float(np.median(plain_ms)), 4),
            "context_bytes": keys.context_bytes, "slots": slots}


def reproduce(epochs: int = 6, lr: float = 0.1, seed: int = 0) -> dict[str, Any]:
    """Encrypted evaluation and encrypted training on the breast-cancer data, vs plaintext.

    ``lr`` is small enough that every logit stays inside the polynomial sigmoid's interval
    [-12, 12]; with lr=1 the logits reach ±30, the cubic leaves its range and the encrypted
    values overflow the last level's modulus (the plaintext polynomial run only oscillates).
    """
    Xtr, Xte, ytr, yte = load_split(seed)
    return {"dataset": "sklearn.datasets.load_breast_cancer", "n_train": int(len(Xtr)), "n_test": int(len(Xte)),
            "evaluation": encrypted_evaluation(Xtr, Xte, ytr, yte),
            "training": logistic_comparison(Xtr, ytr, Xte, yte, lr=lr, epochs=epochs)}
