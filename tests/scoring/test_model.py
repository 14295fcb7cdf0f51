"""The synthetic dataset, the trained model and its exported card."""

from __future__ import annotations

import json

import numpy as np

from models.scoring import dataset
from models.scoring import SHIPPED_DIR, ScoringModel
from models.scoring.train import fairness_report, train


def test_dataset_is_deterministic_and_plausible():
    a, b = dataset.generate(3000, seed=5), dataset.generate(3000, seed=5)
    assert a.sha256() == b.sha256()
    assert dataset.generate(3000, seed=6).sha256() != a.sha256()
    col = dict(zip(dataset.FEATURES, a.X.T))
    income = np.exp(col["log_monthly_income"])
    assert 35_000 < np.median(income) < 80_000
    assert 0.3 < a.y.mean() < 0.85
    assert set(a.gender) == {"F", "M"} and set(a.age_band) == {"18-29", "30-44", "45-60"}
    assert np.all(col["foir"] >= col["new_emi_ratio"])


def test_protected_attributes_are_not_features():
    assert not {"gender", "age_band"} & set(dataset.FEATURES)


def test_training_exports_weights_card_and_fairness(tmp_path):
    model = train(n=4000, seed=11)
    assert model.metrics["test_auc"] > 0.7
    assert set(model.fairness) == {"gender", "age_band"}
    for rep in model.fairness.values():
        assert 0 <= rep["demographic_parity_difference"] <= 1
        assert 0 <= rep["equal_opportunity_difference"] <= 1
    path = model.save(tmp_path)
    card = (tmp_path / "model_card.md").read_text()
    assert model.dataset_sha256 in card and "demographic parity" in card
    for w in model.weights:
        # the card publishes directions, never weights (a pinned 0 is its own direction, "0")
        assert w == 0.0 or repr(w) not in card
    assert json.loads(path.read_text())["bank"]["features"] == list(dataset.FEATURES)
    assert model.train_seconds is not None and model.train_seconds >= 0
    # What was saved loads back as the same model, card included.
    again = ScoringModel.load(tmp_path)
    assert again == model and again.to_record() == model.to_record() and again.card().render() == card


def test_shipped_artifact_is_reproducible():
    shipped = json.loads((SHIPPED_DIR / "loan_lr.json").read_text())
    d = shipped["dataset"]
    assert dataset.generate(d["n"], d["seed"]).sha256() == d["sha256"]


def test_fairness_report_math():
    pred = np.array([1, 1, 0, 0, 1, 0])
    y = np.array([1, 0, 1, 0, 1, 1])
    groups = np.array(["a", "a", "a", "b", "b", "b"])
    rep = fairness_report(pred, y, groups)
    assert rep["groups"]["a"]["selection_rate"] == round(2 / 3, 4)
    assert rep["groups"]["b"]["selection_rate"] == round(1 / 3, 4)
    assert rep["demographic_parity_difference"] == round(2 / 3 - 1 / 3, 4)
    assert rep["equal_opportunity_difference"] == 0.0  # TPR a = 1/2, b = 1/2
