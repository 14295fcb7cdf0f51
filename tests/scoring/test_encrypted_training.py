"""Training on encrypted data converges close to the same algorithm in plaintext (small sizes)."""

from __future__ import annotations

import numpy as np
import pytest

from models.scoring.dataset import generate
from privacy.experiments import encrypted_training as et
from privacy.experiments.breast_cancer import encrypted_evaluation, load_split


def test_trainer_side_has_no_secret_key():
    owner = et.DataOwner(16)
    data = owner.encrypt(np.zeros((16, 1)), np.zeros(16), 0.1, "linear")
    trainer = et.EncryptedTrainer(data, "linear")
    assert trainer.ctx.is_public() and not trainer.ctx.has_secret_key()


def test_linear_toy_matches_plaintext_gradient_descent():
    rep = et.linear_toy(n=32, epochs=4, lr=1.5)
    assert rep["max_abs_diff_vs_plaintext_gd"] < 1e-2
    # Several steps ran between refreshes entirely on ciphertexts.
    assert rep["steps_per_refresh"] == 2 and rep["refreshes"] == 1
    b, w = rep["encrypted"]
    assert abs(b - 2.0) < 0.5 and w > 1.0  # moving from (0, 0) towards (2, 3)


def test_logistic_training_tracks_plaintext():
    ds = generate(600, seed=3)
    cols = [0, 3, 5, 6]  # income, FOIR, utilisation, missed payments
    X = ds.X[:, cols]
    Z = (X - X[:64].mean(0)) / X[:64].std(0)
    y = ds.y.astype(float)
    rep = et.logistic_comparison(Z[:64], y[:64], Z[64:], y[64:], lr=1.0, epochs=2)
    assert rep["max_abs_weight_diff_vs_plain_same_algorithm"] < 2e-2
    acc = rep["test_accuracy"]
    assert abs(acc["encrypted"] - acc["plaintext_poly_sigmoid"]) <= 0.02
    assert acc["encrypted"] > 0.6 and rep["gradients_decrypted"] is False


@pytest.mark.slow
def test_breast_cancer_encrypted_evaluation_agrees():
    Xtr, Xte, ytr, yte = load_split()
    rep = encrypted_evaluation(Xtr, Xte[:25], ytr, yte[:25])
    assert rep["max_abs_error"] < 1e-3 and rep["decision_agreement"] == 1.0
    assert rep["test_accuracy_encrypted"] > 0.9
