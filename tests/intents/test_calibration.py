"""Temperature scaling, ECE and the OOS threshold rule on synthetic logits with known answers."""

from __future__ import annotations

import numpy as np

from models.intents.calibration import apply_oos_threshold, choose_oos_threshold, ece, fit_temperature, softmax


def _overconfident(n: int = 3000, k: int = 5, seed: int = 0):
    """Logits whose true temperature is 3: they are 3x too sharp."""
    rng = np.random.default_rng(seed)
    true_logits = rng.normal(0, 1.5, size=(n, k))
    y = np.array([rng.choice(k, p=p) for p in softmax(true_logits)])
    return true_logits * 3.0, y


def test_temperature_recovers_known_scale_and_lowers_ece():
    logits, y = _overconfident()
    t = fit_temperature(logits, y)
    assert 2.5 < t < 3.5
    assert ece(softmax(logits, t), y) < ece(softmax(logits), y) / 2


def test_probabilities_sum_to_one():
    p = softmax(np.array([[1000.0, 0.0, -1000.0], [1.0, 2.0, 3.0]]), 0.5)
    assert np.allclose(p.sum(axis=1), 1.0) and np.isfinite(p).all()


def test_oos_threshold_catches_low_confidence_without_hurting_in_scope():
    # class 2 is OOS; in-scope rows are confident and right, OOS rows are unsure guesses.
    probs = np.array([[0.9, 0.05, 0.05]] * 50 + [[0.05, 0.9, 0.05]] * 50 + [[0.45, 0.35, 0.2]] * 20)
    y = np.array([0] * 50 + [1] * 50 + [2] * 20)
    t = choose_oos_threshold(probs, y, oos_index=2)
    assert 0.45 < t <= 0.9
    pred = apply_oos_threshold(probs, 2, t)
    assert (pred[:100] == y[:100]).all() and (pred[100:] == 2).all()
    assert (apply_oos_threshold(probs, None, t) == probs.argmax(1)).all()
