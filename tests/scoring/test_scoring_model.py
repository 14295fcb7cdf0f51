"""``models.scoring.ScoringModel``: the JSON round-trip, load errors, the bank part, plaintext predictions, the card."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from app.core.errors import SahayakError
from models.card import ModelCard
from models.scoring import ARTIFACT_NAME, SHIPPED_DIR, BankPart, ScoringModel, load_artifact

SHIPPED = SHIPPED_DIR / ARTIFACT_NAME


def test_shipped_record_round_trips_byte_for_byte(tmp_path) -> None:
    model = ScoringModel.load(SHIPPED)
    raw = SHIPPED.read_text()
    assert model.to_record() == json.loads(raw)
    path = model.save(tmp_path)
    assert path == tmp_path / ARTIFACT_NAME and path.read_bytes() == SHIPPED.read_bytes()
    assert (tmp_path / "model_card.md").read_text() == (SHIPPED_DIR / "model_card.md").read_text()


def test_attributes_are_the_record_values() -> None:
    rec = json.loads(SHIPPED.read_text())
    m = ScoringModel.load(SHIPPED_DIR)  # a folder works as well as the file
    assert (m.name, m.version, m.threshold) == (rec["name"], rec["version"], rec["threshold"])
    assert list(m.features) == rec["bank"]["features"]
    assert list(m.mean) == rec["bank"]["mean"] and list(m.std) == rec["bank"]["std"]
    assert m.directions == rec["bank"]["directions"] and m.defaults == rec["bank"]["defaults"]
    assert [list(b) for b in m.feature_range] == rec["bank"]["feature_range"]
    assert list(m.weights) == rec["server"]["weights"] and m.bias == rec["server"]["bias"]
    assert m.metrics == rec["metrics"] and m.dataset == rec["dataset"] and m.fairness == rec["fairness"]
    assert m.mitigation == rec["mitigation"] and m.dataset_sha256 == rec["dataset"]["sha256"]
    assert (m.trained_at, m.git_commit, m.test_indices_seed) == (rec["trained_at"], rec["git_commit"],
                                                                 rec["test_indices_seed"])
    assert m.started_at is None and m.train_seconds is None  # the shipped record predates them
    assert m.mitigation_summary == {k: rec["mitigation"][k] for k in
                                    ("method", "bound", "penalty", "excluded_features", "bound_met")}
    assert m.fairness_differences["age_band"]["demographic_parity_difference"] == \
        rec["fairness"]["age_band"]["demographic_parity_difference"]


def test_optional_fields_stay_absent_and_changes_are_written_back() -> None:
    rec = json.loads(SHIPPED.read_text())
    del rec["threshold"], rec["bank"]["feature_range"], rec["mitigation"]
    old = ScoringModel.from_record(rec)
    assert old.threshold == 0.5 and old.feature_range is None and old.mitigation == {}
    assert old.to_record() == rec and list(old.to_record()) == list(rec)  # nothing added, order kept
    changed = dataclasses.replace(old, threshold=0.6, version="9.9.9")
    out = changed.to_record()
    assert out["threshold"] == 0.6 and out["version"] == "9.9.9" and "feature_range" not in out["bank"]


def test_a_missing_artifact_names_the_train_command(tmp_path) -> None:
    with pytest.raises(SahayakError, match="sahayak scoring train") as err:
        ScoringModel.load(tmp_path / "nope" / ARTIFACT_NAME)
    assert "not found" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("content", [
    "{not json",
    "[1, 2]",
    json.dumps({"name": "x", "version": "1"}),  # no bank part
    "weights of another length",
])
def test_a_malformed_artifact_is_one_clear_line(tmp_path, content: str) -> None:
    if content == "weights of another length":
        rec = json.loads(SHIPPED.read_text())
        rec["server"]["weights"] = rec["server"]["weights"][:-1]
        content = json.dumps(rec)
    (tmp_path / ARTIFACT_NAME).write_text(content)
    with pytest.raises(SahayakError, match="sahayak scoring train") as err:
        load_artifact(path=tmp_path / ARTIFACT_NAME)
    assert "malformed" in str(err.value) and "\n" not in str(err.value)


def test_bank_part_carries_no_weights() -> None:
    m = ScoringModel.load(SHIPPED)
    bank = m.bank_part()
    assert isinstance(bank, BankPart)
    names = {f.name for f in dataclasses.fields(bank)}
    assert not {"weights", "bias"} & names
    assert bank.features == m.features and bank.mean == m.mean and bank.feature_range == m.feature_range
    assert bank.version == m.version and bank.threshold == m.threshold


def test_predict_proba_is_the_plaintext_logistic_regression() -> None:
    m = ScoringModel.load(SHIPPED)
    X, y = m.held_out_set()
    assert len(X) == int(m.dataset["n"] * m.dataset["test_fraction"]) == len(y)
    z = (X - np.asarray(m.mean)) / np.asarray(m.std) @ np.asarray(m.weights) + m.bias
    p = m.predict_proba(X)
    np.testing.assert_allclose(p, 1 / (1 + np.exp(-z)), rtol=1e-12)
    assert np.array_equal(m.predict(X), z >= 0)  # threshold 0.5: sigmoid(z) ≥ 0.5 exactly when z ≥ 0
    assert round(float(np.mean(m.predict(X) == (y == 1))), 4) == m.metrics["test_accuracy"]
    assert round(float(np.mean(m.predict(X))), 4) == m.metrics["approval_rate_test"]
    assert m.predict_proba(X[0]).shape == ()  # one row gives one probability


def test_card_is_a_model_card_stating_directions_not_weights() -> None:
    m = ScoringModel.load(SHIPPED)
    card = m.card()
    assert isinstance(card, ModelCard)
    text = card.render()
    assert text.startswith(f"# Loan-eligibility model {m.name} `{m.version}`")
    for heading in ("## Intended use", "## Model", "## Training data", "## Metrics (held-out 20 %)",
                    "## Fairness of the shipped model (held-out set)", "## Features and published effect directions",
                    "## Defaults", "## Limitations"):
        assert heading in text
    assert m.dataset_sha256 in text and m.git_commit in text
    for w in m.weights:
        assert w == 0.0 or repr(w) not in text
