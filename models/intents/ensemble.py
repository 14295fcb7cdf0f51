"""Approach 5: an ensemble of the fine-tuned encoder and the frozen MiniLM + char n-gram model.

The two make different mistakes: fine-tuning reshapes the embedding space around the labels,
while the frozen model keeps the general-purpose embedding and adds character n-grams (typos,
romanised Hindi). The ensemble adds their *calibrated* log-probabilities with a weight chosen on
a validation split that neither member was trained on, and the shared base class then fits one
more temperature over the sum.

Both members are ordinary model directories (``members/finetune``, ``members/frozen``) with
their own lineage and model card; this directory adds ``config.json`` with the weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from models.intents.base import IntentClassifier
from models.intents.data import Dataset, stratified_split

MEMBERS = ("finetune", "frozen")


class EnsembleClassifier(IntentClassifier):
    """Weighted sum of the members' calibrated log-probabilities."""

    approach = "ensemble"

    def __init__(self, model_dir: Path, config: dict[str, Any]) -> None:
        from models.intents.train import load_model

        super().__init__(model_dir, config)
        self.members = [(load_model(Path(model_dir) / m["dir"]), float(m["weight"])) for m in config["members"]]
        for clf, _ in self.members:
            if clf.labels != self.labels:
                raise ValueError(f"ensemble member {clf.model_dir} has a different label set")

    def _scores(self, texts: list[str]) -> np.ndarray:
        return _combine([clf.predict_proba(texts) for clf, _ in self.members], [w for _, w in self.members])


def _combine(probs: list[np.ndarray], weights: list[float]) -> np.ndarray:
    return sum(w * np.log(np.clip(p, 1e-12, 1.0)) for p, w in zip(probs, weights))


def train_ensemble(data: Dataset, out: Path, labels: list[str], fast: bool, seed: int, params: dict[str, Any]) -> dict[str, Any]:
    """Train both members, then choose the weight on the fine-tuning's own hold-out split.

    The fine-tuned member holds out ``val_fraction`` of the rows (same seed, same split as
    here); the frozen member is trained on the remaining rows only, so both are scored on rows
    they never saw.
    """
    from models.intents.train import load_model, train_model

    val_fraction = float(params.get("val_fraction", 0.15))
    tr_idx, va_idx = stratified_split(data.labels, val_fraction, seed)
    ft_params = {k: v for k, v in params.items() if k not in ("frozen", "weights")}
    ft_params["val_fraction"] = val_fraction
    fr_params = dict(params.get("frozen", {"char_ngrams": True, "C_grid": [32.0], "cv_folds": 3}))
    for key in ("embedding_model", "max_length", "quantize"):
        if key in params:
            fr_params.setdefault(key, params[key])
    dirs = {"finetune": train_model("finetune", data, out / "members" / "finetune", fast=fast, seed=seed, params=ft_params),
            "frozen": train_model("frozen", data.subset(tr_idx), out / "members" / "frozen", fast=fast, seed=seed,
                                  params=fr_params)}
    val = data.subset(va_idx)
    y = np.array([labels.index(lab) for lab in val.labels])
    probs = {}
    for name in MEMBERS:
        clf = load_model(dirs[name])
        probs[name] = clf.predict_proba(val.texts)
    grid = [float(w) for w in params.get("weights", np.round(np.linspace(0.0, 1.0, 11), 2))]
    scores = []
    for w in grid:  # weight of the fine-tuned member; the frozen one gets 1 - w
        logits = _combine([probs["finetune"], probs["frozen"]], [w, 1.0 - w])
        scores.append((float((logits.argmax(1) == y).mean()), w))
    best_acc, best_w = max(scores, key=lambda t: (round(t[0], 4), -abs(t[1] - 0.5)))
    weights = {"finetune": best_w, "frozen": round(1.0 - best_w, 2)}
    val_logits = _combine([probs["finetune"], probs["frozen"]], [weights["finetune"], weights["frozen"]])
    member_acc = {n: round(float((p.argmax(1) == y).mean()), 4) for n, p in probs.items()}
    return {
        "val_logits": val_logits,
        "val_y": y,
        "val_kind": f"stratified hold-out split ({val_fraction:.0%}, seed {seed}) that neither member trained on",
        "hyperparameters": {"members": list(MEMBERS), "weights": weights, "weight_grid": grid,
                            "val_accuracy_by_weight": {str(w): round(a, 4) for a, w in scores},
                            "member_val_accuracy": member_acc, "finetune": ft_params, "frozen": fr_params,
                            "seed": seed},
        "config": {"members": [{"approach": n, "dir": f"members/{n}", "weight": weights[n]} for n in MEMBERS]},
        "metrics": {"member_val_accuracy": member_acc, "weights": weights},
    }
