"""Group-fairness measurement and mitigation for the loan-eligibility logistic regression.

Measurement: demographic-parity difference (DPD, spread of approval rates across groups) and
equal-opportunity difference (EOD, spread of true-positive rates), max minus min over groups.

Mitigation, all at training time so the exported model stays one ``w·x + b`` that the CKKS
service evaluates and the protected attributes are never sent to it:

* **Reweighing** (Kamiran & Calders 2012): each training example gets the weight
  ``P(group) · P(label) / P(group, label)``, which makes group and label independent in the
  weighted training data.
* **Demographic-parity penalty** (in-processing): the L2 logistic loss plus
  ``λ · Σ_attributes Σ_groups (mean p̂ in group − mean p̂ overall)²`` — a differentiable
  stand-in for DPD that needs the group only to compute the loss. ``λ`` is chosen on a
  validation split carved from the training split (never on the held-out test set).
* **Excluded features**: weights pinned to 0 (e.g. ``age``), so the penalty cannot equalise
  approval rates by scoring one age group lower at equal finances.
* **Sign constraints**: each weight keeps the sign it has in the unmitigated fit or becomes 0,
  so the published effect directions (and the explanations built on them) stay true.

The fit minimises scikit-learn's L2 logistic objective (``C`` as in ``LogisticRegression``)
divided by the number of examples, with SciPy's L-BFGS; with ``λ = 0`` and no excluded feature
it reproduces ``LogisticRegression(C).fit(X, y, sample_weight)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# The bound the project states for both differences on both protected attributes (docs/risk-register.md R10).
FAIRNESS_BOUND = 0.10
# λ candidates for the penalty, smallest first (0 = reweighing alone).
PENALTY_GRID: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0)


def _rates(pred: np.ndarray, y: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """Selection rate and true-positive rate of one group."""
    sel = float(pred[mask].mean()) if mask.any() else float("nan")
    pos = mask & (y == 1)
    tpr = float(pred[pos].mean()) if pos.any() else float("nan")
    return sel, tpr


def fairness_report(pred: np.ndarray, y: np.ndarray, groups: np.ndarray) -> dict[str, Any]:
    """Demographic-parity and equal-opportunity differences (max minus min over groups)."""
    per_group, sels, tprs = {}, [], []
    for g in sorted(set(groups.tolist())):
        sel, tpr = _rates(pred, y, groups == g)
        sels.append(sel)
        tprs.append(tpr)
        per_group[g] = {"selection_rate": round(sel, 4), "true_positive_rate": round(tpr, 4),
                        "n": int((groups == g).sum())}
    # Differences from the unrounded rates (rounding first could shift the last digit).
    return {"groups": per_group,
            "demographic_parity_difference": round(max(sels) - min(sels), 4),
            "equal_opportunity_difference": round(max(tprs) - min(tprs), 4)}


def worst_difference(reports: Mapping[str, Mapping[str, Any]]) -> float:
    """The largest DPD or EOD over all attributes in ``{attribute: fairness_report(...)}``."""
    return max(max(r["demographic_parity_difference"], r["equal_opportunity_difference"]) for r in reports.values())


def sampling_margin(attributes: Mapping[str, np.ndarray], n_eval: int, z: float = 2.0) -> float:
    """``z`` standard errors of an approval-rate difference on an evaluation set of ``n_eval`` rows.

    Taken between the two smallest groups of each attribute (their shares from ``attributes``),
    at the worst-case rate 0.5, and the largest over attributes: how far a held-out DPD can land
    from the model's true gap by sampling alone.
    """
    worst = 0.0
    for g in attributes.values():
        shares = sorted(float(np.mean(g == v)) for v in np.unique(g))[:2]
        if len(shares) == 2:
            worst = max(worst, float(np.sqrt(0.25 * sum(1.0 / (s * n_eval) for s in shares))))
    return z * worst


def reweighing_weights(groups: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kamiran–Calders weights ``P(g)·P(y)/P(g, y)``; they average to 1 over the sample."""
    w = np.ones(len(y), dtype=float)
    for g in np.unique(groups):
        in_g = groups == g
        for label in np.unique(y):
            cell = in_g & (y == label)
            if cell.any():
                w[cell] = in_g.mean() * (y == label).mean() / cell.mean()
    return w


def joint_groups(attributes: Mapping[str, np.ndarray]) -> np.ndarray:
    """One group label per row for the intersection of several attributes (e.g. ``"F|18-29"``)."""
    cols = [np.asarray(v).astype(str) for v in attributes.values()]
    out = cols[0]
    for c in cols[1:]:
        out = np.char.add(np.char.add(out, "|"), c)
    return out


@dataclass(frozen=True)
class LinearModel:
    """Weights and bias of a logistic regression over standardised features."""

    weights: np.ndarray
    bias: float

    def proba(self, Z: np.ndarray) -> np.ndarray:
        """Approval probability for each row of ``Z``."""
        from scipy.special import expit  # heavy: scipy (~0.17 s); this module loads at CLI start, only training uses it

        return expit(Z @ self.weights + self.bias)


def fit_logistic(Z: np.ndarray, y: np.ndarray, *, C: float = 1.0, sample_weight: np.ndarray | None = None,
                 groups: Sequence[np.ndarray] = (), penalty: float = 0.0,
                 fixed_zero: Sequence[int] = (), signs: Sequence[int] | None = None,
                 init: LinearModel | None = None) -> LinearModel:
    """L2 logistic regression with an optional demographic-parity penalty over ``groups``.

    ``groups`` holds one label array per protected attribute (used in the loss only);
    ``fixed_zero`` lists feature columns whose weight is pinned to 0; ``signs`` (one of −1, 0, +1
    per feature) keeps each weight on its side of 0 (0: free) — a mitigated fit may shrink an
    effect to nothing but not reverse it, which would make the published directions and the
    explanations built on them wrong; ``init`` warm-starts the optimiser (the objective is convex,
    so the minimiser does not depend on it beyond tolerance).
    """
    # heavy: scipy.optimize (~0.4 s), only training fits
    from scipy.optimize import minimize
    from scipy.special import expit

    n, d = Z.shape
    y = np.asarray(y, dtype=float)
    s = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    free = np.ones(d + 1, dtype=bool)
    free[list(fixed_zero)] = False
    Xb = np.hstack([Z, np.ones((n, 1))])
    masks = [[g == v for v in np.unique(g)] for g in groups] if penalty > 0 else []

    def objective(theta_free: np.ndarray) -> tuple[float, np.ndarray]:
        theta = np.zeros(d + 1)
        theta[free] = theta_free
        z = Xb @ theta
        p = expit(z)
        w = theta[:-1]
        # sklearn's objective  ½‖w‖² + C Σ sᵢ ℓᵢ, divided by C·n (same minimiser, well-scaled for L-BFGS).
        loss = float(s @ (np.logaddexp(0.0, z) - y * z)) / n + float(w @ w) / (2 * C * n)
        grad = Xb.T @ (s * (p - y)) / n
        grad[:-1] += w / (C * n)
        if masks:
            dp = p * (1 - p)
            p_all, g_all = p.mean(), Xb.T @ dp / n
            for attr in masks:
                for m in attr:
                    gap = p[m].mean() - p_all
                    loss += penalty * gap * gap
                    grad += penalty * 2 * gap * (Xb[m].T @ dp[m] / m.sum() - g_all)
        return loss, grad[free]

    limits = [(0.0, None) if sg > 0 else (None, 0.0) if sg < 0 else (None, None)
              for sg in (signs if signs is not None else [0] * d)] + [(None, None)]
    start = np.zeros(d + 1) if init is None else np.append(init.weights, init.bias)
    res = minimize(objective, start[free], jac=True, method="L-BFGS-B",
                   bounds=[b for b, f in zip(limits, free) if f],
                   options={"maxiter": 10_000, "gtol": 1e-9, "ftol": 1e-13})
    theta = np.zeros(d + 1)
    theta[free] = res.x
    return LinearModel(weights=theta[:-1], bias=float(theta[-1]))


def evaluate(model: LinearModel, Z: np.ndarray, y: np.ndarray, attributes: Mapping[str, np.ndarray],
             threshold: float) -> dict[str, Any]:
    """Accuracy, ROC AUC, approval rate and the fairness report per attribute on one split."""
    from sklearn.metrics import accuracy_score, roc_auc_score  # heavy: sklearn (~0.7 s), only training evaluates

    proba = model.proba(Z)
    pred = (proba >= threshold).astype(int)
    return {"accuracy": round(float(accuracy_score(y, pred)), 4),
            "auc": round(float(roc_auc_score(y, proba)), 4),
            "approval_rate": round(float(pred.mean()), 4),
            "fairness": {a: fairness_report(pred, y, g) for a, g in attributes.items()}}


def choose_penalty(Z: np.ndarray, y: np.ndarray, attributes: Mapping[str, np.ndarray], *, threshold: float,
                   bound: float, margin: float, C: float, fixed_zero: Sequence[int], seed: int,
                   signs: Sequence[int] | None = None, folds: int = 5) -> dict[str, Any]:
    """Pick the smallest λ whose cross-validated DPD and EOD are all ≤ ``bound − margin``.

    ``Z``/``y``/``attributes`` are the *training* split only. Each λ is scored on out-of-fold
    predictions pooled over ``folds`` folds (every training row predicted by a model that did not
    see it; reweighing refitted inside each fold), so the differences are measured on the whole
    training split rather than on one small validation part — the gaps are between groups of a
    few hundred to a few thousand rows and a single split is too noisy to choose by. Falls back to
    the λ with the smallest worst difference when none qualifies. Returns the choice and every
    candidate's cross-validated numbers.
    """
    from sklearn.metrics import accuracy_score, roc_auc_score  # heavy: sklearn (~0.7 s), only training

    fold_of = np.random.default_rng(seed).permutation(len(y)) % folds
    parts = []
    for k in range(folds):
        fit = fold_of != k
        attrs_fit = {a: g[fit] for a, g in attributes.items()}
        parts.append((fit, attrs_fit, reweighing_weights(joint_groups(attrs_fit), y[fit])))
    candidates = []
    previous: list[LinearModel | None] = [None] * folds  # warm starts along the λ path
    for lam in PENALTY_GRID:
        proba = np.empty(len(y))
        for k, (fit, attrs_fit, weights) in enumerate(parts):
            model = fit_logistic(Z[fit], y[fit], C=C, sample_weight=weights, groups=list(attrs_fit.values()),
                                 penalty=lam, fixed_zero=fixed_zero, signs=signs, init=previous[k])
            previous[k] = model
            proba[~fit] = model.proba(Z[~fit])
        pred = (proba >= threshold).astype(int)
        fairness = {a: fairness_report(pred, y, g) for a, g in attributes.items()}
        candidates.append({"penalty": lam, "accuracy": round(float(accuracy_score(y, pred)), 4),
                           "auc": round(float(roc_auc_score(y, proba)), 4),
                           "worst_difference": round(worst_difference(fairness), 4)})
    target = bound - margin
    ok = [c for c in candidates if c["worst_difference"] <= target]
    chosen = ok[0] if ok else min(candidates, key=lambda c: (c["worst_difference"], c["penalty"]))
    return {"penalty": chosen["penalty"], "met_in_cross_validation": bool(ok), "target": round(target, 4),
            "folds": folds, "rows": int(len(y)), "candidates": candidates}
