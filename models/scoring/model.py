"""The loan-scoring model as one class: :class:`ScoringModel` (``load`` / ``save`` / ``predict_proba`` / ``card``).

One class per model family, sentence-transformers style. The artifact on disk stays the JSON record
``train.train()`` writes (``loan_lr.json``) with its generated card (``model_card.md``); this class
gives its consumers typed attributes instead of key lookups, keeps the complete record so nothing in
the JSON is lost, and writes it back byte for byte.

The record has two parts with different audiences: the *bank* part (feature order,
standardisation, published effect directions, defaults, the training box — :meth:`ScoringModel.bank_part`,
what the bank-side client may know) and the *server* part (weights and bias — only the encrypted
scoring service reads these), plus the training record (metrics, held-out fairness, the fairness
mitigation, dataset, git commit). The product scores under encryption
(:mod:`privacy.client`, :mod:`privacy.service`); :meth:`ScoringModel.predict_proba` is the
plaintext reference for tests and benchmarks.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.core.errors import SahayakError
from app.core.settings import get_settings
from models.card import ModelCard
from models.scoring.card import model_card
from models.scoring.dataset import generate

__all__ = ["ARTIFACT_NAME", "SHIPPED_DIR", "BankPart", "ScoringModel", "artifact_path", "load_artifact"]

ARTIFACT_NAME = "loan_lr.json"
SHIPPED_DIR = Path(__file__).resolve().parent / "artifacts"

# What the model's lineage claims about how it was made fair (the card states the same).
_MITIGATION_CLAIM = ("method", "bound", "penalty", "excluded_features", "bound_met")
_FAIRNESS_DIFFERENCES = ("demographic_parity_difference", "equal_opportunity_difference")

_REQUIRED = object()  # marks a field the record must hold
_MISSING = object()  # a path the record does not have

# attribute -> (where it lives in the JSON record, the value when the record lacks it). Attributes
# with a default were added to the format over time (older artifacts lack them) or are optional.
_FIELDS: dict[str, tuple[tuple[str, ...], Any]] = {
    "name": (("name",), _REQUIRED),
    "version": (("version",), _REQUIRED),
    "threshold": (("threshold",), 0.5),
    "features": (("bank", "features"), _REQUIRED),
    "mean": (("bank", "mean"), _REQUIRED),
    "std": (("bank", "std"), _REQUIRED),
    "directions": (("bank", "directions"), _REQUIRED),
    "defaults": (("bank", "defaults"), _REQUIRED),
    "feature_range": (("bank", "feature_range"), None),
    "weights": (("server", "weights"), _REQUIRED),
    "bias": (("server", "bias"), _REQUIRED),
    "metrics": (("metrics",), {}),
    "dataset": (("dataset",), {}),
    "fairness": (("fairness",), {}),
    "mitigation": (("mitigation",), {}),
    "started_at": (("started_at",), None),
    "trained_at": (("trained_at",), None),
    "train_seconds": (("train_seconds",), None),
    "git_commit": (("git_commit",), None),
    "test_indices_seed": (("test_indices_seed",), None),
}


def _lookup(record: Any, path: tuple[str, ...]) -> Any:
    """The value at ``path`` in nested dicts, or ``_MISSING``."""
    node = record
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return _MISSING
        node = node[key]
    return node


def _assign(record: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    """Set ``path`` in nested dicts, creating the parents it needs (appended after the existing keys)."""
    node = record
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value


def _to_json(value: Any) -> Any:
    """Tuples back to JSON lists (recursively); everything else copied."""
    if isinstance(value, tuple):
        return [_to_json(v) for v in value]
    return copy.deepcopy(value)


def _numbers(name: str, value: Any, n: int) -> tuple[float, ...]:
    """A list of ``n`` numbers as a tuple (values kept as stored, so the JSON round-trips exactly)."""
    if not isinstance(value, list) or len(value) != n or not all(isinstance(v, (int, float)) for v in value):
        raise ValueError(f"{name} must be a list of {n} numbers")
    return tuple(value)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    """The logistic function, numerically stable for large |z| (the same formula as ``privacy.ckks.sigmoid``)."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


@dataclass(frozen=True)
class BankPart:
    """What the bank-side client may know of the model: no weights, no bias.

    Feature order and standardisation to prepare the ciphertext, the published effect directions
    (signs only) to explain a decision, the population defaults for inputs the customer did not
    give, and the standardised training box probability mode clips to (``None`` in artifacts
    written before it was added).
    """

    name: str
    version: str
    threshold: float
    features: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    directions: dict[str, int]
    defaults: dict[str, float]
    feature_range: tuple[tuple[float, float], ...] | None


@dataclass(frozen=True, repr=False)
class ScoringModel:
    """The loan-eligibility logistic regression with its training record.

    Build one with :meth:`load` (a file or folder), :meth:`from_record` (the parsed JSON) or
    ``models.scoring.train.train()``. Dict-valued attributes are views of the record: read them,
    do not change them (use :func:`dataclasses.replace` for a changed model).
    """

    name: str
    version: str
    threshold: float
    features: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    directions: dict[str, int]  # published sign of each feature's effect (+1, -1, 0)
    defaults: dict[str, float]  # population medians for raw inputs the customer did not give
    feature_range: tuple[tuple[float, float], ...] | None  # standardised training box (min, max) per feature
    weights: tuple[float, ...]
    bias: float
    metrics: dict[str, Any]
    dataset: dict[str, Any]  # generator, n, seed, sha256, test_fraction, protected_attributes
    fairness: dict[str, Any]  # held-out fairness report per protected attribute
    mitigation: dict[str, Any]  # the fairness mitigation with its before/after comparison
    started_at: str | None
    trained_at: str | None
    train_seconds: float | None
    git_commit: str | None
    test_indices_seed: int | None
    record: dict[str, Any] = field(default_factory=dict, compare=False)  # the complete JSON record

    # -- reading and writing ---------------------------------------------------------------------
    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "ScoringModel":
        """The model of a parsed ``loan_lr.json`` record; ``ValueError`` naming what is wrong when it is malformed."""
        if not isinstance(record, dict):
            raise ValueError("the record is not a JSON object")
        values: dict[str, Any] = {}
        for attr, (path, default) in _FIELDS.items():
            value = _lookup(record, path)
            if value is _MISSING:
                if default is _REQUIRED:
                    raise ValueError(f"the record has no {'.'.join(path)}")
                value = default
            values[attr] = copy.deepcopy(value)
        features = values["features"]
        if not isinstance(features, list) or not features or not all(isinstance(f, str) for f in features):
            raise ValueError("bank.features must be a non-empty list of names")
        n = len(features)
        values["features"] = tuple(features)
        for attr, path in (("mean", "bank.mean"), ("std", "bank.std"), ("weights", "server.weights")):
            values[attr] = _numbers(path, values[attr], n)
        box = values["feature_range"]
        if box is not None:
            if not isinstance(box, list) or len(box) != n or not all(isinstance(b, list) and len(b) == 2 for b in box):
                raise ValueError(f"bank.feature_range must hold one [min, max] pair for each of the {n} features")
            values["feature_range"] = tuple(_numbers("bank.feature_range", b, 2) for b in box)
        for attr in ("threshold", "bias"):
            if isinstance(values[attr], bool) or not isinstance(values[attr], (int, float)):
                raise ValueError(f"{'.'.join(_FIELDS[attr][0])} must be a number")
        for attr in ("directions", "defaults", "metrics", "dataset", "fairness", "mitigation"):
            if not isinstance(values[attr], dict):
                raise ValueError(f"{'.'.join(_FIELDS[attr][0])} must be a JSON object")
        return cls(**values, record=copy.deepcopy(record))

    def to_record(self) -> dict[str, Any]:
        """The JSON record: the stored one with this model's attributes written back (exact round trip)."""
        out = copy.deepcopy(self.record)
        for attr, (path, default) in _FIELDS.items():
            value = getattr(self, attr)
            if _lookup(out, path) is _MISSING and default is not _REQUIRED and value == default:
                continue  # absent in the record and still the default: keep it absent
            _assign(out, path, _to_json(value))
        return out

    @classmethod
    def load(cls, path: str | Path) -> "ScoringModel":
        """Read ``loan_lr.json`` (or the folder holding it); ``SahayakError`` when it is absent or malformed."""
        p = Path(path)
        if p.is_dir():
            p = p / ARTIFACT_NAME
        if not p.is_file():
            raise SahayakError(f"scoring model not found at {p}; run `sahayak scoring train`")
        try:
            return cls.from_record(json.loads(p.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise SahayakError(f"scoring model at {p} is malformed ({reason}); "
                               "run `sahayak scoring train` to write a new one") from None

    def save(self, out_dir: str | Path) -> Path:
        """Write ``loan_lr.json`` and ``model_card.md`` into ``out_dir``; return the JSON's path."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        path = out / ARTIFACT_NAME
        path.write_text(json.dumps(self.to_record(), indent=1) + "\n", encoding="utf-8")
        self.card().save(out)
        return path

    def card(self) -> ModelCard:
        """The model card, generated from the training record (it states directions, never weights)."""
        return model_card(self)

    # -- views for consumers -----------------------------------------------------------------------
    def bank_part(self) -> BankPart:
        """What the bank-side client may know (no weights)."""
        return BankPart(name=self.name, version=self.version, threshold=self.threshold, features=self.features,
                        mean=self.mean, std=self.std, directions=dict(self.directions),
                        defaults=dict(self.defaults), feature_range=self.feature_range)

    @property
    def dataset_sha256(self) -> str | None:
        """SHA-256 of the generated training data (``None`` when the record does not say)."""
        return self.dataset.get("sha256")

    @property
    def mitigation_summary(self) -> dict[str, Any]:
        """How the model was made fair, as its lineage claims it: method, bound, penalty, excluded features, bound met."""
        return {k: self.mitigation.get(k) for k in _MITIGATION_CLAIM}

    @property
    def fairness_differences(self) -> dict[str, dict[str, float]]:
        """Held-out demographic-parity and equal-opportunity differences per protected attribute."""
        return {attr: {k: rep[k] for k in _FAIRNESS_DIFFERENCES} for attr, rep in self.fairness.items()}

    # -- plaintext evaluation (tests and benchmarks; the product scores under encryption) -------------
    def standardise(self, X: np.ndarray) -> np.ndarray:
        """Model-order raw features (one row or n × features) standardised with the training mean and std."""
        return (np.asarray(X, dtype=float) - np.asarray(self.mean)) / np.asarray(self.std)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Exact plaintext approval probabilities of model-order raw rows (the reference for encrypted scores)."""
        return _sigmoid(self.standardise(X) @ np.asarray(self.weights, dtype=float) + float(self.bias))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Plaintext decisions (True = approve) at the model's threshold."""
        return self.predict_proba(X) >= self.threshold

    def held_out_set(self) -> tuple[np.ndarray, np.ndarray]:
        """The held-out rows and labels (same generator, seed and split as training)."""
        d = self.dataset
        if not all(k in d for k in ("n", "seed", "test_fraction")):
            raise SahayakError("this scoring model's record does not say how its data was generated")
        ds = generate(d["n"], d["seed"])
        seed = self.test_indices_seed if self.test_indices_seed is not None else d["seed"] + 1
        order = np.random.default_rng(seed).permutation(d["n"])
        idx = order[: int(d["n"] * d["test_fraction"])]
        return ds.X[idx], ds.y[idx]

    def __repr__(self) -> str:
        return f"ScoringModel(name={self.name!r}, version={self.version!r}, features={len(self.features)})"


def artifact_path(settings: Any = None) -> Path:
    """The artifact in use: a retrained one under ``settings.models_dir/scoring`` or the shipped one."""
    if settings is None:
        settings = get_settings()
    trained = Path(settings.models_dir) / "scoring" / ARTIFACT_NAME
    return trained if trained.exists() else SHIPPED_DIR / ARTIFACT_NAME


def load_artifact(settings: Any = None, path: str | Path | None = None) -> ScoringModel:
    """The scoring model in use (or the one at ``path``); ``SahayakError`` with a clear line when absent or malformed."""
    return ScoringModel.load(path or artifact_path(settings))
