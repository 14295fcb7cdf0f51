"""Training, loading and evaluating intent models (one model directory per trained model).

A model directory holds the approach's weights, ``config.json`` (labels, temperature, OOS
threshold, approach settings), ``metrics.json``, ``lineage.json`` and ``model_card.md``.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
from tqdm import tqdm

from app.core.errors import SahayakError
from app.core.fsutil import publishing
from models.embeddings import MPNET_NAME
from models.intents.base import IntentClassifier, read_config
from models.intents.calibration import (
    apply_oos_threshold, choose_oos_threshold, ece, fit_temperature, softmax, threshold_table,
)
from models.intents.data import OOS_LABEL, Dataset
from models.intents.lineage import write_lineage, write_model_card

APPROACHES = ("frozen", "finetune", "ensemble", "zeroshot", "llm")

# Named configurations of an approach, selectable wherever an approach name is (CLI ``--approach``,
# ``SAHAYAK_CLASSIFIER``, the benchmark). Explicit ``params`` override a preset's keys.
# The best single model on BANKING77 (docs/intents.md): the top 6 of all-mpnet-base-v2's 12 layers
# fine-tuned on cached states of the bottom 6, float32 serving (int8 cost frozen mpnet 0.4-1.2
# points); the char n-gram refit head lost on validation. Its hold-out only fits the temperature
# (and, in the ensemble, one weight), so 5 % of the rows is enough and the other 10 % train.
# bf16 autocast of the trained layers (ignored on CPUs without native bf16) is 1.7x faster per step
# and cost one row of a 1,203-row inner hold-out. 2 cores, 8,005 texts: 5-9 min of fine-tuning with
# bf16, depending on the machine; in float32 12-23 min, where the 12-minute loop budget cuts epochs
# (`--max-minutes`). Measurements per machine: docs/intents.md.
_MPNET_TOP6: dict[str, Any] = {"embedding_model": MPNET_NAME, "freeze_layers": 6, "cache_frozen_layers": True,
                               "quantize": False, "char_ngrams": False, "epochs": 4.0, "lr": 5e-5,
                               "val_fraction": 0.05, "bf16": True}
PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "finetune-mpnet": ("finetune", _MPNET_TOP6),
    # The most accurate model: finetune-mpnet plus a frozen MiniLM (float32) with character n-grams,
    # a member that errs differently (another encoder, surface features) and costs ~100 s more to
    # train; the weight is chosen by log-loss on the 5 % hold-out. Split seeds 5 / 6 / 3: 94.89 /
    # 94.24 / 93.49 % (mean 94.21 %; its finetune-mpnet member 93.79 %, the same-run baselines
    # 92.37 %). All 10,003 BANKING77 rows: 9.0 min on 2 cores (AMX machine).
    "ensemble-mpnet": ("ensemble", {**_MPNET_TOP6, "frozen": {"embedding_model": None, "quantize": False,
                                                              "char_ngrams": True}}),
}
APPROACH_NAMES = APPROACHES + tuple(PRESETS)  # everything ``train_model`` accepts


# Each approach lives in its own module and is found by name, so an approach built from others (the
# ensemble trains and loads its members through this module) imports this module without a cycle.
_APPROACH_MODULES = {
    "frozen": ("models.intents.frozen", "train_frozen", "FrozenClassifier"),
    "finetune": ("models.intents.finetune", "train_finetune", "FinetuneClassifier"),
    "ensemble": ("models.intents.ensemble", "train_ensemble", "EnsembleClassifier"),
    "zeroshot": ("models.intents.zeroshot", "train_zeroshot", "ZeroShotClassifier"),
    "llm": ("models.intents.llm_intents", "train_llm", "LLMClassifier"),
}


def _approach(approach: str, part: int) -> Any:
    try:
        module, *names = _APPROACH_MODULES[approach]
    except KeyError:
        raise SahayakError(f"unknown intent approach {approach!r}; choose one of {', '.join(APPROACH_NAMES)}") from None
    # Imported on demand: an approach pulls in its own heavy libraries (torch, the LLM) only when used.
    return getattr(importlib.import_module(module), names[part])


def _trainer(approach: str) -> Callable[..., dict[str, Any]]:
    return _approach(approach, 0)


def _classifier_class(approach: str) -> type[IntentClassifier]:
    return _approach(approach, 1)


def classification_metrics(y_true: list[str], y_pred: list[str], labels: list[str]) -> dict[str, Any]:
    """Accuracy, macro-F1, per-label F1 and, when Out_Of_Scope is a label, OOS recall and in-scope accuracy."""
    from sklearn.metrics import accuracy_score, f1_score  # heavy: sklearn (~0.7 s), only evaluation needs it

    out: dict[str, Any] = {
        "accuracy": round(float(accuracy_score(y_true, y_pred)), 4),
        "macro_f1": round(float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)), 4),
        "n": len(y_true),
    }
    per = f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    out["per_label_f1"] = {lab: round(float(f), 4) for lab, f in zip(labels, per)}
    if OOS_LABEL in labels:
        oos = [p for t, p in zip(y_true, y_pred) if t == OOS_LABEL]
        ins = [(t, p) for t, p in zip(y_true, y_pred) if t != OOS_LABEL]
        out["oos_recall"] = round(sum(p == OOS_LABEL for p in oos) / len(oos), 4) if oos else None
        out["in_scope_accuracy"] = round(sum(t == p for t, p in ins) / len(ins), 4) if ins else None
    return out


def train_model(approach: str, data: Dataset, out: str | Path, *, fast: bool = False, seed: int = 13,
                params: dict[str, Any] | None = None) -> Path:
    """Train ``approach`` on ``data`` into the directory ``out`` (written atomically) and return it."""
    preset = approach if approach in PRESETS else None
    if preset:
        approach, preset_params = PRESETS[preset]
        params = {**preset_params, **(params or {})}
    params = dict(params or {})
    out = Path(out)
    labels = data.label_set
    if len(labels) < 2:
        raise SahayakError("training data needs at least two labels")
    with publishing(out) as tmp:
        t0 = time.perf_counter()
        result = _trainer(approach)(data, tmp, labels, fast, seed, params)
        train_s = time.perf_counter() - t0
        logits, y = np.asarray(result["val_logits"], dtype=np.float64), np.asarray(result["val_y"])
        temperature = fit_temperature(logits, y)
        probs_raw, probs = softmax(logits, 1.0), softmax(logits, temperature)
        oos_index = labels.index(OOS_LABEL) if OOS_LABEL in labels else None
        oos_threshold = choose_oos_threshold(probs, y, oos_index) if oos_index is not None else 0.0
        pred = apply_oos_threshold(probs, oos_index, oos_threshold)
        val = classification_metrics([labels[i] for i in y], [labels[i] for i in pred], labels)
        weights_digest = _digest_dir(tmp)
        model_version = f"intents-{approach}-{weights_digest[:12]}"
        config = {
            "approach": approach, "preset": preset, "labels": labels, "temperature": round(temperature, 6),
            "oos_threshold": oos_threshold, "model_version": model_version, "fast": fast,
            "descriptions": {lab: data.descriptions.get(lab, lab) for lab in labels},
            **result.get("config", {}),
        }
        metrics = {
            "validation": result["val_kind"], "val_n": int(len(y)),
            "val_accuracy": val["accuracy"], "val_macro_f1": val["macro_f1"],
            "val_accuracy_argmax": round(float((probs.argmax(1) == y).mean()), 4),
            "val_oos_recall": val.get("oos_recall"), "val_in_scope_accuracy": val.get("in_scope_accuracy"),
            "per_label_f1": val["per_label_f1"],
            "temperature": round(temperature, 4), "oos_threshold": oos_threshold,
            "ece_before": round(ece(probs_raw, y), 4), "ece_after": round(ece(probs, y), 4),
            "clarify_threshold_table": threshold_table(probs, y),
            "training_seconds": round(train_s, 2),
            **result.get("metrics", {}),
        }
        (tmp / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
        lineage = write_lineage(tmp, approach=approach, data=data, hyperparameters=result["hyperparameters"],
                                training_seconds=train_s, model_version=model_version,
                                extra={"fast": fast, "validation": result["val_kind"], "preset": preset})
        write_model_card(tmp, approach=approach, data=data, metrics=metrics, lineage=lineage)
    return out


def _digest_dir(d: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in d.rglob("*") if p.is_file()):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def load_model(model_dir: str | Path) -> IntentClassifier:
    """Load a trained model directory (any approach)."""
    d = Path(model_dir)
    if not (d / "config.json").exists():
        raise SahayakError(f"{d} is not a trained intent model (no config.json); train one with `sahayak intents train`")
    config = read_config(d)
    return _classifier_class(config["approach"])(d, config)


def evaluate(clf: IntentClassifier, data: Dataset, *, batch_size: int = 64, latency_queries: int = 200,
             progress: bool = False) -> tuple[dict[str, Any], list[str], list[str]]:
    """Accuracy/macro-F1 on ``data`` plus single-query latency p50/p95 (one text per call).

    Returns (metrics, y_true, y_pred). Labels unknown to the model count as errors.
    """
    # The reported predictions must be the ones chat gets one message at a time. An int8 encoder
    # quantises each batch's activations with one scale, so a text's scores depend on its batch
    # (3 of 240 held-out turns flipped on an AVX2 CPU): such models are scored one text per call.
    # The others batch, by length to keep padding low.
    if not clf.batch_invariant:
        batch_size = 1
    order = sorted(range(len(data)), key=lambda i: len(data.texts[i]))
    preds: list[str] = [""] * len(data)
    starts = range(0, len(data), batch_size)
    if progress:
        starts = tqdm(starts, desc="evaluating", unit="batch", leave=False)
    for s in starts:
        idx = order[s : s + batch_size]
        for i, (lab, _) in zip(idx, clf.predict([data.texts[i] for i in idx])):
            preds[i] = lab
    labels = sorted(set(clf.labels) | set(data.labels))
    metrics = classification_metrics(data.labels, preds, labels)
    if latency_queries > 0:
        metrics.update(single_query_latency(clf, data.texts, latency_queries))
    metrics["model_version"] = clf.model_version
    metrics["approach"] = clf.approach
    return metrics, list(data.labels), preds


def single_query_latency(clf: IntentClassifier, texts: list[str], n: int = 200, seed: int = 0) -> dict[str, Any]:
    """p50/p95 milliseconds of ``classify`` on one text at a time, as the chat path sees it (after warm-up)."""
    rng = np.random.default_rng(seed)
    sample = [texts[i] for i in rng.choice(len(texts), size=min(n, len(texts)), replace=False)]
    for t in sample[:5]:
        clf.classify(t)
    lat = []
    for t in sample:
        t0 = time.perf_counter()
        clf.classify(t)
        lat.append((time.perf_counter() - t0) * 1000.0)
    return {"latency_ms_p50": round(float(np.percentile(lat, 50)), 3),
            "latency_ms_p95": round(float(np.percentile(lat, 95)), 3), "latency_queries": len(lat)}


def confusion_png(y_true: list[str], y_pred: list[str], path: str | Path, title: str = "") -> Path:
    """Save a confusion matrix image (rows true, columns predicted)."""
    import matplotlib  # heavy: matplotlib (~0.2 s), only when the picture is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # heavy: as above
    from sklearn.metrics import confusion_matrix

    labels = sorted(set(y_true) | set(y_pred))
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    size = max(6.0, 0.28 * len(labels) + 3)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7 if len(labels) > 20 else 9)
    ax.set_yticks(range(len(labels)), labels, fontsize=7 if len(labels) > 20 else 9)
    if len(labels) <= 20:
        for i in range(len(labels)):
            for j in range(len(labels)):
                if cm[i, j]:
                    ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                            color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or "confusion matrix")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
