"""Fairness mitigation of the loan model: reweighing, the parity penalty, the record and the card."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from models.scoring import dataset
from models.scoring.fairness import (FAIRNESS_BOUND, fit_logistic, joint_groups, reweighing_weights,
                                     sampling_margin, worst_difference)
from models.scoring import SHIPPED_DIR, ScoringModel
from models.scoring.train import fairness_report, model_card, train


@pytest.fixture(scope="module")
def same_data() -> dict[str, ScoringModel]:
    """The unmitigated and the mitigated fit on the same generated data and split."""
    return {"none": train(n=4000, seed=11, mitigation="none"), "mitigated": train(n=4000, seed=11)}


def _standardised(n: int = 4000, seed: int = 3) -> tuple[np.ndarray, dataset.LoanDataset]:
    ds = dataset.generate(n, seed)
    return (ds.X - ds.X.mean(axis=0)) / ds.X.std(axis=0), ds


def test_reweighing_makes_group_and_label_independent() -> None:
    _, ds = _standardised()
    groups = joint_groups(ds.protected())
    w = reweighing_weights(groups, ds.y)
    assert w.mean() == pytest.approx(1.0)
    overall = ds.y.mean()
    raw_gap = max(abs(ds.y[groups == g].mean() - overall) for g in np.unique(groups))
    assert raw_gap > 0.05  # the labels do differ by group before reweighing
    for g in np.unique(groups):
        m = groups == g
        assert np.average(ds.y[m], weights=w[m]) == pytest.approx(overall)  # weighted P(y=1 | g) = P(y=1)


def test_unpenalised_fit_matches_scikit_learn() -> None:
    from sklearn.linear_model import LogisticRegression  # heavy: only this test needs it

    Z, ds = _standardised()
    w = reweighing_weights(ds.age_band, ds.y)
    ours = fit_logistic(Z, ds.y, C=1.0, sample_weight=w)
    ref = LogisticRegression(C=1.0, max_iter=5000, tol=1e-10).fit(Z, ds.y, sample_weight=w)
    np.testing.assert_allclose(ours.weights, ref.coef_[0], atol=2e-3)
    assert ours.bias == pytest.approx(ref.intercept_[0], abs=2e-3)


def test_penalty_narrows_the_approval_gap_and_respects_constraints() -> None:
    Z, ds = _standardised()
    age = dataset.FEATURES.index("age")
    plain = fit_logistic(Z, ds.y)
    signs = [int(v) for v in np.sign(plain.weights)]
    fair = fit_logistic(Z, ds.y, groups=[ds.age_band], penalty=16.0, fixed_zero=[age], signs=signs)

    def gap(model: Any) -> float:
        pred = (model.proba(Z) >= 0.5).astype(int)
        return fairness_report(pred, ds.y, ds.age_band)["demographic_parity_difference"]

    assert gap(fair) < gap(plain) / 2
    assert fair.weights[age] == 0.0
    assert all(s == 0 or v * s >= 0 for v, s in zip(fair.weights, signs)), "no effect may change sign"


def test_mitigation_lowers_age_band_gap_versus_unmitigated_fit(same_data: dict[str, ScoringModel]) -> None:
    before, after = same_data["none"], same_data["mitigated"]
    assert before.dataset_sha256 == after.dataset_sha256
    dpd = {k: a.fairness["age_band"]["demographic_parity_difference"] for k, a in same_data.items()}
    eod = {k: a.fairness["age_band"]["equal_opportunity_difference"] for k, a in same_data.items()}
    assert dpd["mitigated"] < dpd["none"] - 0.05
    assert eod["mitigated"] < eod["none"]
    # the record's "unmitigated" row is exactly the unmitigated fit on the same data
    row = after.mitigation["comparison"][0]
    assert row["model"] == "unmitigated"
    assert row["fairness"]["age_band"]["demographic_parity_difference"] == dpd["none"]
    assert row["accuracy"] == before.metrics["test_accuracy"]
    assert after.directions["age"] == 0  # the mitigated model does not use age at all


def test_model_card_states_bound_method_and_before_after(same_data: dict[str, ScoringModel]) -> None:
    art = same_data["mitigated"]
    card = model_card(art).render()
    assert card == art.card().render()
    mit = art.mitigation
    assert f"≤ **{FAIRNESS_BOUND}**" in card
    assert "Kamiran & Calders" in card and "demographic-parity penalty" in card and f"λ = {mit['penalty']}" in card
    before, after = mit["comparison"][0], mit["comparison"][-1]
    for row in (before, after):
        line = next(ln for ln in card.splitlines() if ln.startswith(f"| {row['model']}"))
        assert str(row["fairness"]["age_band"]["demographic_parity_difference"]) in line
        assert str(row["accuracy"]) in line
    assert f"Bound met: {'yes' if mit['bound_met'] else 'no'}" in card
    assert f"{before['worst_difference']} unmitigated → {after['worst_difference']} shipped" in card
    assert mit["bound_met"] == (worst_difference(art.fairness) <= FAIRNESS_BOUND)


def test_sampling_margin_is_two_standard_errors_of_the_smallest_groups() -> None:
    groups = np.array(["a"] * 100 + ["b"] * 300 + ["c"] * 600)
    margin = sampling_margin({"g": groups}, n_eval=1000)
    assert margin == pytest.approx(2 * np.sqrt(0.25 * (1 / 100 + 1 / 300)))


def test_shipped_model_meets_the_bound_it_states() -> None:
    """Recompute the held-out fairness from the shipped weights, independently of the training code."""
    art = json.loads((SHIPPED_DIR / "loan_lr.json").read_text())
    d = art["dataset"]
    ds = dataset.generate(d["n"], d["seed"])
    order = np.random.default_rng(art["test_indices_seed"]).permutation(d["n"])
    test = order[: int(d["n"] * d["test_fraction"])]
    Z = (ds.X[test] - np.array(art["bank"]["mean"])) / np.array(art["bank"]["std"])
    logit = Z @ np.array(art["server"]["weights"]) + art["server"]["bias"]
    pred = (logit >= 0).astype(int)  # sigmoid(z) ≥ 0.5
    for attr, groups in ds.protected().items():
        rep = fairness_report(pred, ds.y[test], groups[test])
        assert rep == art["fairness"][attr]
        assert rep["demographic_parity_difference"] <= FAIRNESS_BOUND
        assert rep["equal_opportunity_difference"] <= FAIRNESS_BOUND
    assert art["mitigation"]["bound_met"] is True
    card = (SHIPPED_DIR / "model_card.md").read_text()
    assert card == ScoringModel.from_record(art).card().render(), "the shipped card is generated from the shipped record"
