"""Calibration: temperature scaling, expected calibration error and threshold choice."""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature`` (numerically stable)."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def nll(logits: np.ndarray, y: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood of the true classes at ``temperature``."""
    p = softmax(logits, temperature)[np.arange(len(y)), y]
    return float(-np.mean(np.log(np.clip(p, 1e-12, 1.0))))


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature T > 0 minimising validation NLL (Guo et al. 2017), searched in log space."""
    from scipy.optimize import minimize_scalar  # heavy: scipy.optimize (~0.4 s), only training calibrates

    res = minimize_scalar(lambda lt: nll(logits, y, float(np.exp(lt))), bounds=(-4.0, 4.0), method="bounded")
    return float(np.exp(res.x))


def ece(probs: np.ndarray, y: np.ndarray, n_bins: int = 15) -> float:
    """Expected calibration error of the top-1 confidence (equal-width bins)."""
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == y).astype(np.float64)
    bins = np.linspace(0.0, 1.0, n_bins + 1)
    total = 0.0
    for lo, hi in zip(bins[:-1], bins[1:]):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            total += m.mean() * abs(conf[m].mean() - correct[m].mean())
    return float(total)


def choose_oos_threshold(probs: np.ndarray, y: np.ndarray, oos_index: int, max_in_scope_drop: float = 0.005) -> float:
    """The max-probability threshold below which a prediction is turned into Out_Of_Scope.

    Picks the highest threshold whose in-scope accuracy is within ``max_in_scope_drop`` of the
    accuracy with no threshold, so OOS recall rises without hurting in-scope accuracy.
    """
    pred = probs.argmax(axis=1)
    conf = probs.max(axis=1)
    in_scope = y != oos_index
    if not in_scope.any():
        return 0.0
    base = float((pred[in_scope] == y[in_scope]).mean())
    best = 0.0
    for t in np.round(np.arange(0.05, 0.951, 0.01), 2):
        p2 = np.where((conf < t) & (pred != oos_index), oos_index, pred)
        if float((p2[in_scope] == y[in_scope]).mean()) >= base - max_in_scope_drop:
            best = float(t)
    return best


def apply_oos_threshold(probs: np.ndarray, oos_index: int | None, threshold: float) -> np.ndarray:
    """Predicted class per row after the OOS threshold rule."""
    pred = probs.argmax(axis=1)
    if oos_index is None or threshold <= 0:
        return pred
    return np.where((probs.max(axis=1) < threshold) & (pred != oos_index), oos_index, pred)


def threshold_table(probs: np.ndarray, y: np.ndarray, thresholds=(0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)) -> list[dict]:
    """Coverage and accuracy of predictions at or above each confidence threshold (for clarify_threshold)."""
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y
    rows = []
    for t in thresholds:
        m = conf >= t
        rows.append({
            "threshold": t,
            "coverage": round(float(m.mean()), 4),
            "accuracy_above": round(float(correct[m].mean()), 4) if m.any() else None,
            "errors_caught": round(float((~correct & ~m).sum() / max(1, (~correct).sum())), 4),
        })
    return rows
