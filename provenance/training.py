"""Training runs into the provenance log, written by the training commands when they run.

A training run is four kinds of signed record (W3C PROV terms in brackets):

* one ``dataset`` record per training file or generated data set [``prov:Entity``]: path,
  SHA-256 and a description;
* one ``training`` record [``prov:Activity``]: its real ``started_at``/``ended_at`` (taken
  by the trainer, not when the record is written), the ``agent`` that ran it
  [``prov:Agent``: an engineer or a system identity, see :func:`agent_identity`], the
  datasets it used, the model it generated, the command, and the git commit (with its
  ``-dirty`` flag) of the code that trained;
* one ``model`` record [``prov:Entity``] with ``origin: "training"``, version,
  hyper-parameters, metrics, environment, the same commit and the ``training_id``.

The chat process never writes a training record. When it uses a model whose training is not
in this log (trained elsewhere, or before training recorded itself), it writes a model record
with ``origin: "registered_at_first_use"``, no datasets and no training activity: an auditor
sees that the lineage is only claimed (``claimed`` holds what the model's own card says).

Turns point at models by ``name@version`` (:func:`model_key`) in their ``model_versions``.
``recorded-models.json`` next to the log remembers which keys this log already has.
"""

from __future__ import annotations

import getpass
import json
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from app.core.fingerprint import environment_facts
from models.scoring import ScoringModel
from provenance.records import new_record_id

_lock = threading.Lock()
MARKER = "recorded-models.json"
ORIGIN_TRAINING = "training"
ORIGIN_FIRST_USE = "registered_at_first_use"


@dataclass(frozen=True)
class DatasetRef:
    """A dataset a training run used: where it is, its SHA-256 and what it is."""

    path: str
    sha256: str
    description: str


def model_key(name: str, version: str) -> str:
    """The id a turn's ``model_versions`` uses to point at a model record."""
    return f"{name}@{version}"


def agent_identity(settings: Any = None) -> dict[str, str]:
    """Who runs a training: ``settings.agent`` / ``$SAHAYAK_AGENT``, else the OS user.

    ``system:<name>`` names a system identity (a CI job, a scheduler); anything else is an engineer.
    """
    raw = (getattr(settings, "agent", None) or os.environ.get("SAHAYAK_AGENT") or "").strip()
    if not raw:
        try:
            raw = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry (some containers)
            raw = "unknown"
    kind, _, name = raw.partition(":") if raw.startswith("system:") else ("engineer", "", raw)
    return {"id": f"{kind}:{name}", "name": name, "kind": kind}


def iso(ts: datetime | str) -> str:
    """An aware UTC ISO-8601 timestamp (seconds precision kept as given)."""
    if isinstance(ts, str):
        ts = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    return ts.astimezone(timezone.utc).isoformat()


def _seen(folder: Path) -> dict[str, str]:
    try:
        data = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if isinstance(data, list):  # the first format: a list of keys, all recorded at first use
        return {k: ORIGIN_FIRST_USE for k in data}
    return dict(data)


def _remember(folder: Path, key: str, origin: str) -> None:
    seen = _seen(folder)
    if seen.get(key) == ORIGIN_TRAINING:
        return
    seen[key] = origin
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (MARKER + ".tmp")
    tmp.write_text(json.dumps(seen, sort_keys=True), encoding="utf-8")
    tmp.replace(folder / MARKER)


def recorded_models(log_folder: str | Path) -> dict[str, str]:
    """``name@version`` → origin (``training`` or ``registered_at_first_use``) of the models in this log."""
    return _seen(Path(log_folder))


def record_training_run(tracker: Any, *, name: str, version: str, datasets: list[DatasetRef],
                        started_at: datetime | str, ended_at: datetime | str, hyperparameters: dict[str, Any],
                        metrics: dict[str, Any], git_commit: str | None, command: str,
                        agent: dict[str, str] | None = None, environment: dict[str, Any] | None = None,
                        settings: Any = None, key: str | None = None) -> str:
    """Record one training run (datasets, the training activity, the model); returns the model key.

    Called by the training command right after training, with the times the trainer measured.
    Every run is recorded, also a retrain that reproduces an existing version. ``key`` overrides
    ``name@version`` where turns already name the model otherwise (the reranker's version string).
    """
    key = key or model_key(name, version)
    start, end = iso(started_at), iso(ended_at)
    if end < start:
        raise ValueError("a training cannot end before it starts")
    agent = agent or agent_identity(settings or getattr(tracker, "settings", None))
    training_id = new_record_id()
    hashes = sorted({d.sha256 for d in datasets})
    for d in sorted(datasets, key=lambda d: d.path):
        tracker.record_dataset(d.path, d.description, sha256=d.sha256)
    commit = git_commit or None
    tracker.record_training(training_id=training_id, model_id=key, started_at=start, ended_at=end, agent=agent,
                            dataset_hashes=hashes, git_commit=commit, command=command)
    tracker.record_model(name, version, hyperparameters=hyperparameters, metrics=metrics, dataset_hashes=hashes,
                         git_commit_id=commit, environment=environment if environment is not None else environment_facts(),
                         model_id=key, training_id=training_id, origin=ORIGIN_TRAINING, agent=agent["id"],
                         git_dirty=bool(commit and commit.endswith("-dirty")), trained_at=end)
    with _lock:
        _remember(Path(tracker.folder), key, ORIGIN_TRAINING)
    return key


def register_model_at_first_use(tracker: Any, name: str, version: str, *, claimed: dict[str, Any] | None = None,
                                description: str = "") -> str:
    """Make sure this log names ``name@version``; returns the key.

    A model already in the log (trained here, or registered before) gets nothing new. Otherwise
    one model record with ``origin: "registered_at_first_use"`` is written: no training activity,
    no datasets (so the seed's "models without datasets" query lists it), and what the model's
    card claims about its training kept apart under ``claimed``.
    """
    key = model_key(name, version)
    with _lock:
        if key in _seen(Path(tracker.folder)):
            return key
        tracker.record_model(name, version, hyperparameters={}, metrics={}, dataset_hashes=[],
                             git_commit_id=(claimed or {}).get("git_commit") or "", environment={},
                             model_id=key, origin=ORIGIN_FIRST_USE, claimed=claimed or {},
                             description=description or f"{key} registered at first use: its training is not in this log")
        _remember(Path(tracker.folder), key, ORIGIN_FIRST_USE)
    return key


# ---------------------------------------------------------------------------------------
# What each trainer leaves next to its weights, as a training run (plain JSON: no model code)
# ---------------------------------------------------------------------------------------
def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def intent_run(model_dir: str | Path) -> dict[str, Any]:
    """``record_training_run`` arguments for an intent model (from lineage.json and metrics.json)."""
    d = Path(model_dir)
    lineage = _read_json(d / "lineage.json")
    if not lineage:
        raise ValueError(f"{d} has no lineage.json")
    ended = lineage["created_at"]
    started = lineage.get("started_at") or ended
    return {"name": "intents", "version": lineage["model_version"],
            "datasets": [DatasetRef(p, h, f"intent training examples ({Path(p).name})")
                         for p, h in sorted((lineage.get("training_files") or {}).items())],
            "started_at": started, "ended_at": ended,
            "hyperparameters": {"approach": lineage.get("approach"), **(lineage.get("hyperparameters") or {})},
            "metrics": _read_json(d / "metrics.json"), "git_commit": lineage.get("git_commit"),
            "environment": {"libraries": lineage.get("libraries")}}


def scoring_run(model: ScoringModel) -> dict[str, Any]:
    """``record_training_run`` arguments for the loan-scoring model (its training record)."""
    ds = model.dataset
    ended = model.trained_at
    if ended is None:
        raise ValueError("the scoring model's record has no trained_at")
    path = f"{ds.get('generator', 'models/scoring/dataset.py')} (n={ds.get('n')}, seed={ds.get('seed')})"
    return {"name": "loan-scoring", "version": model.version,
            "datasets": [DatasetRef(path, model.dataset_sha256 or "", "synthetic loan applications")],
            "started_at": model.started_at or ended, "ended_at": ended,
            "hyperparameters": {"threshold": model.threshold, "model": "L2 logistic regression (C=1)",
                                "fairness_mitigation": model.mitigation_summary},
            "metrics": {**model.metrics, "fairness": model.fairness},
            "git_commit": model.git_commit}


def reranker_run(model_dir: str | Path) -> dict[str, Any]:
    """``record_training_run`` arguments for a cross-encoder reranker (from reranker.json)."""
    info = _read_json(Path(model_dir) / "reranker.json")
    if not info:
        raise ValueError(f"{model_dir} has no reranker.json")
    ended = info["trained_at"]
    return {"name": "reranker", "version": info["version"], "key": info["version"],
            "datasets": [DatasetRef(f"kb corpus {info.get('corpus_fingerprint', '')[:16]}",
                                    info.get("corpus_fingerprint", ""),
                                    "knowledge-base chunks and synthetic queries mined from them")],
            "started_at": info.get("started_at") or ended, "ended_at": ended,
            "hyperparameters": {"config": info.get("config"), "base_model": info.get("base_model"),
                                "alpha": info.get("alpha")},
            "metrics": {k: info.get(k) for k in ("val_mrr", "train_groups", "val_groups", "train_seconds")},
            "git_commit": info.get("git_commit")}
