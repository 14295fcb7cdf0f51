"""``model_card.md`` for the loan-scoring model, generated from its training record.

The one card shape of :mod:`models.card` (as the intent and reranker models use): intended use,
model, data, held-out metrics with the fairness bound, the mitigation and its before/after table,
then the shipped model's fairness, the published effect directions and the defaults, and the
limitations. The card states directions, never weights, and only what the record says.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from models.card import NOT_RECORDED, ModelCard, recorded

if TYPE_CHECKING:  # the model builds its card with this module: a type only, no import cycle
    from models.scoring.model import ScoringModel

__all__ = ["METHOD_TEXT", "model_card"]

METHOD_TEXT = {
    "none": "no fairness mitigation",
    "reweigh": "reweighing (Kamiran & Calders) of the training examples by gender × age band",
    "reweigh+penalty": ("reweighing (Kamiran & Calders) of the training examples by gender × age band, plus a "
                        "demographic-parity penalty in the loss"),
}


def _fmt(v: Any) -> str:
    return "—" if v is None else str(v)


def _percent(fraction: Any) -> str:
    """The held-out share as a whole percentage ("not recorded" when the record lacks it)."""
    return NOT_RECORDED if fraction is None else str(int(fraction * 100))


def _mitigation_lines(model: ScoringModel) -> list[str]:
    """The bound, what was done, the before/after table and whether the bound holds."""
    mit = model.mitigation
    if not mit:
        return []
    bound = mit["bound"]
    lines = [
        f"**Fairness bound.** Demographic-parity difference (DPD) and equal-opportunity difference (EOD) must",
        f"each be ≤ **{bound}** on the held-out set, for every protected attribute (max minus min over groups).",
        "",
        f"**Mitigation.** {METHOD_TEXT[mit['method']][0].upper()}{METHOD_TEXT[mit['method']][1:]}.",
    ]
    if mit["method"] != "none":
        rw = mit["reweighing"]
        lines += [
            f"Reweighing gives each training example the weight P(group)·P(label)/P(group, label) (fitted on the",
            f"{rw['fitted_on']} only; weights {rw['weight_range'][0]}–{rw['weight_range'][1]}), so group and label are",
            "independent in the weighted data.",
        ]
    if mit["method"] == "reweigh+penalty":
        sel = mit["selection"]
        how = (f"{sel['folds']}-fold cross-validated DPD and EOD (out-of-fold predictions over the {sel['rows']} "
               f"training rows, so nothing is tuned on the held-out set) ≤ {sel['target']}: the bound less "
               f"{mit['selection_margin']}, two standard errors of a held-out-sized estimate")
        lines += [
            "The penalty adds λ·Σ_attribute Σ_group (mean predicted approval in the group − overall mean)² to the",
            "L2 logistic loss. "
            + (f"λ = {mit['penalty']} is the smallest value on the grid with {how}." if sel["met_in_cross_validation"]
               else f"No λ on the grid reached {how}; λ = {mit['penalty']} has the smallest cross-validated "
                    "difference."),
            f"The weight of {', '.join(f'`{x}`' for x in mit['excluded_features'])} is pinned to 0: with it free, the "
            "penalty closes the gap by scoring older applicants lower at equal finances (disparate treatment by",
            "age; the row \"age weight free\" below). Every other weight keeps its unmitigated sign or becomes 0, so",
            "the published directions stay true"
            + (f" ({', '.join(f'`{x}`' for x in mit['zeroed_by_sign_constraint'])} → 0: the penalty removes its reward "
               "because it tracks age)." if mit.get("zeroed_by_sign_constraint") else "."),
            "Gender and age band are used only while fitting; the exported model, the bank-side client and the",
            "encrypted service never see them.",
        ]
    attrs = list(model.fairness)
    head = "| model | accuracy | ROC AUC | approval rate | " + " | ".join(
        f"{a} DPD | {a} EOD" for a in attrs) + " |"
    lines += ["", f"**Before and after (held-out {_percent(model.dataset.get('test_fraction'))} %, same split).**", "",
              head, "|" + "---|" * (4 + 2 * len(attrs))]
    for row in mit.get("comparison", []):
        name = row["model"] + (f", λ={row['penalty']}" if "penalty" in row else "")
        cells = [name, row["accuracy"], row["auc"], row["approval_rate"]]
        for a in attrs:
            fa = row["fairness"].get(a, {})
            cells += [_fmt(fa.get("demographic_parity_difference")), _fmt(fa.get("equal_opportunity_difference"))]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    before, after = mit["comparison"][0], mit["comparison"][-1]
    lines += [
        "",
        f"**Bound met: {'yes' if mit['bound_met'] else 'no'}.** Largest difference "
        f"{before['worst_difference']} unmitigated → {after['worst_difference']} shipped; cost "
        f"{round(before['accuracy'] - after['accuracy'], 4)} accuracy and "
        f"{round(before['auc'] - after['auc'], 4)} AUC.",
    ]
    if not mit["bound_met"]:
        lines.append("The bound is NOT met by the shipped model; do not release it for decisions.")
    return lines


def _fairness_table(model: ScoringModel) -> str:
    """The shipped model's held-out fairness per protected attribute, with the selection rate of each group."""
    lines = [
        "| attribute | demographic parity diff. | equal opportunity diff. | selection rate by group |",
        "|---|---|---|---|",
    ]
    for attr, rep in model.fairness.items():
        groups = ", ".join(f"{g}: {v['selection_rate']}" for g, v in rep["groups"].items())
        lines.append(f"| {attr} | {rep['demographic_parity_difference']} | "
                     f"{rep['equal_opportunity_difference']} | {groups} |")
    lines += [
        "",
        "The gender gap comes through income (the generator has a documented pay gap), not from",
        "the attribute itself; monitor it before any real use.",
    ]
    return "\n".join(lines)


def model_card(model: ScoringModel) -> ModelCard:
    """The loan-scoring model's card, from its training record (no weights in it)."""
    m, d = model.metrics, model.dataset
    mit = model.mitigation or {"method": "none"}
    method = mit["method"]
    directions = "\n".join(f"- `{k}`: {'+' if v > 0 else '−' if v < 0 else '0'}" for k, v in model.directions.items())
    defaults = ", ".join(f"`{k}`={round(v, 2)}" for k, v in model.defaults.items())
    limitations = [
        "Synthetic data; linear model; no reject inference.",
        """The explanation lists the features where the applicant differs most from the population in the
  published direction, not exact contributions (the weights stay on the server).""",
    ]
    if method != "none":
        limitations += [
            """Group fairness is bought with accuracy: equal approval rates across age bands mean approving
  some younger applicants the underwriting rule would decline and declining some older ones it
  would approve, and probabilities are no longer calibrated within each group.""",
            f"""The mitigation needs the protected attributes in the training data (lawfully collected, kept away
  from scoring); the held-out differences carry sampling error of about
  ±{round(mit.get('selection_margin', 0.0) / 2, 3) or '—'} (one standard error), so recheck them on real data.""",
        ]
    return ModelCard(
        title=f"Loan-eligibility model {model.name}",
        version=model.version,
        trained_at=model.trained_at,
        git_commit=model.git_commit,
        train_seconds=model.train_seconds,
        provenance="Made by `sahayak scoring train` (`python -m models.scoring.train` for the shipped copy).",
        intended_use="""Indicative loan-eligibility score for the Sahayak demo bank; evaluated under
CKKS homomorphic encryption so the scoring service never sees the applicant's data.
Not a credit decision: a person reviews every application.""",
        model=("L2-regularised logistic regression (C=1, scikit-learn's objective, fitted with SciPy L-BFGS) over "
               f"{len(model.features)} standardised features; decision threshold {model.threshold};\n"
               f"{METHOD_TEXT[method]}."),
        data=f"""Synthetic, generated by `models/scoring/dataset.py` (n={recorded(d.get('n'))}, seed={recorded(d.get('seed'))},
sha256 `{recorded(d.get('sha256'))}`); distributions are documented in that module and in docs/scoring.md.
Protected attributes (gender, age band) are generated but never used as features. `age` is a feature
(the underwriting rule penalises long tenures past 50), and the young have shorter credit histories
and lower incomes, so approval rates differ by age band in the labels themselves.""",
        metrics_heading=f"Metrics (held-out {_percent(d.get('test_fraction'))} %)",
        metrics="\n".join([
            f"accuracy {recorded(m.get('test_accuracy'))}, ROC AUC {recorded(m.get('test_auc'))}, approval rate "
            f"{recorded(m.get('approval_rate_test'))} (base rate {recorded(m.get('base_rate'))}).",
            "", *_mitigation_lines(model)]),
        extra=[
            ("Fairness of the shipped model (held-out set)", _fairness_table(model)),
            ("Features and published effect directions",
             f"The sign of each feature's effect (+ raises, − lowers the score, 0 not used):\n\n{directions}"),
            ("Defaults", f"Inputs the customer did not give are filled with population medians:\n{defaults}."),
        ],
        limitations=limitations,
    )
