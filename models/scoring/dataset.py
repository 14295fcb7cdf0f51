"""Seeded synthetic loan-application data for the eligibility model.

Nothing here is real customer data. Every distribution is a deliberate, documented
choice meant to look like an Indian retail-lending book (see docs/scoring.md):

* ``monthly_income`` (INR) is log-normal (median ≈ ₹55,000, long right tail), as
  salaries are; it depends mildly on age and on the protected ``gender`` attribute
  (a documented pay gap) so that a fairness report has something real to measure
  even though ``gender`` is never a model feature.
* ``existing_emis`` is zero for ~45 % of applicants, otherwise a gamma share of income.
* ``credit_history_years`` grows with age; ``credit_utilisation`` is beta-distributed.
* ``missed_payments_24m`` and ``recent_enquiries_6m`` are Poisson counts.
* The requested ``loan_amount`` and ``tenure_months`` depend on the loan type
  (ranges from data/bank_facts.yaml); the new EMI is the standard annuity at the
  product's mid rate.

The label ``approved`` is drawn from a *latent* underwriting rule (FOIR — fixed
obligations to income ratio — caps, credit behaviour, collateral) with noise; the rule
includes a non-linear FOIR threshold so the logistic model is an approximation, as in
practice. The protected attributes (``gender``, ``age_band``) never enter the rule, but
``age`` does (a long tenure past 50 is penalised) and ``age_band`` is a function of ``age``,
which is a model feature; younger applicants also have shorter credit histories and lower
incomes, so approval rates differ by age band in the labels themselves (see the model card
for the measured gap and its mitigation).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

# Model features in the order of the encrypted vector; the bank side computes the derived ones.
FEATURES: tuple[str, ...] = (
    "log_monthly_income",
    "existing_emis_ratio",
    "new_emi_ratio",
    "foir",
    "credit_history_years",
    "credit_utilisation",
    "missed_payments_24m",
    "recent_enquiries_6m",
    "employment_years",
    "age",
    "log_loan_amount",
    "tenure_months",
    "secured",
)

# Raw inputs a caller (the Loan_Enquiry handler, the CLI) may supply, with population medians
# used when the customer did not say (documented in the model card).
RAW_INPUTS: tuple[str, ...] = (
    "monthly_income",
    "existing_emis",
    "loan_amount",
    "tenure_months",
    "credit_history_years",
    "credit_utilisation",
    "missed_payments_24m",
    "recent_enquiries_6m",
    "employment_years",
    "age",
    "secured",
)

LOAN_TYPES: dict[str, dict[str, float]] = {
    # share of applications, mid rate (% p.a.), amount range (INR), max tenure (months), secured
    "home": {"share": 0.25, "rate": 9.0, "min": 500_000, "max": 50_000_000, "tenure": 360, "secured": 1},
    "car": {"share": 0.20, "rate": 9.85, "min": 100_000, "max": 5_000_000, "tenure": 84, "secured": 1},
    "personal": {"share": 0.35, "rate": 13.5, "min": 50_000, "max": 2_500_000, "tenure": 60, "secured": 0},
    "education": {"share": 0.10, "rate": 9.6, "min": 50_000, "max": 7_500_000, "tenure": 180, "secured": 0},
    "gold": {"share": 0.10, "rate": 10.6, "min": 10_000, "max": 2_500_000, "tenure": 36, "secured": 1},
}


def annuity_emi(principal: float | np.ndarray, annual_rate_pct: float | np.ndarray,
                months: float | np.ndarray) -> np.ndarray:
    """Monthly instalment of an amortising loan (the standard EMI formula)."""
    r = np.asarray(annual_rate_pct, dtype=float) / 1200.0
    n = np.asarray(months, dtype=float)
    growth = (1.0 + r) ** n
    return np.asarray(principal, dtype=float) * r * growth / (growth - 1.0)


def derive_features(raw: dict[str, float], annual_rate_pct: float = 12.0) -> dict[str, float]:
    """Turn raw applicant inputs into the model's feature dictionary (bank side, plaintext)."""
    income = max(float(raw["monthly_income"]), 1.0)
    emis = max(float(raw.get("existing_emis", 0.0)), 0.0)
    amount = max(float(raw["loan_amount"]), 1.0)
    tenure = max(float(raw["tenure_months"]), 1.0)
    new_emi = float(annuity_emi(amount, annual_rate_pct, tenure))
    return {
        "log_monthly_income": float(np.log(income)),
        "existing_emis_ratio": emis / income,
        "new_emi_ratio": new_emi / income,
        "foir": (emis + new_emi) / income,
        "credit_history_years": float(raw["credit_history_years"]),
        "credit_utilisation": float(raw["credit_utilisation"]),
        "missed_payments_24m": float(raw["missed_payments_24m"]),
        "recent_enquiries_6m": float(raw["recent_enquiries_6m"]),
        "employment_years": float(raw["employment_years"]),
        "age": float(raw["age"]),
        "log_loan_amount": float(np.log(amount)),
        "tenure_months": tenure,
        "secured": float(raw["secured"]),
    }


@dataclass(frozen=True)
class LoanDataset:
    """The generated table: features ``X`` (FEATURES order), labels ``y`` and protected attributes."""

    X: np.ndarray
    y: np.ndarray
    gender: np.ndarray  # "F" | "M"  (protected; never a feature)
    age_band: np.ndarray  # "18-29" | "30-44" | "45-60"  (protected; never a feature)
    loan_type: np.ndarray
    seed: int

    def protected(self) -> dict[str, np.ndarray]:
        """The protected attributes by name (used for fairness measurement and mitigation only)."""
        return {"gender": self.gender, "age_band": self.age_band}

    def sha256(self) -> str:
        """Content hash of the dataset (features, labels, protected attributes), for the model card.

        Features are hashed rounded to 6 decimals: numpy's vectorised exp/log differ in the last
        bit between CPUs (AVX-512 vs AVX2 kernels), and the hash must name the data, not the CPU.
        """
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(np.round(self.X, 6), dtype="<f8").tobytes())
        h.update(np.ascontiguousarray(self.y, dtype="<i1").tobytes())
        h.update("|".join(self.gender.tolist()).encode())
        h.update("|".join(self.age_band.tolist()).encode())
        return h.hexdigest()


def generate(n: int = 20_000, seed: int = 20240611) -> LoanDataset:
    """Generate ``n`` synthetic applications deterministically from ``seed``."""
    rng = np.random.default_rng(seed)
    gender = rng.choice(np.array(["F", "M"]), size=n, p=[0.42, 0.58])
    age = np.clip(rng.normal(36, 9, n), 21, 60).round()
    age_band = np.where(age < 30, "18-29", np.where(age < 45, "30-44", "45-60"))

    # Income: log-normal around ₹55k, rising with age to ~45, with a documented gender pay gap.
    log_income = (np.log(55_000) + 0.25 * np.tanh((age - 30) / 12) - 0.12 * (gender == "F")
                  + rng.normal(0, 0.55, n))
    income = np.clip(np.exp(log_income), 12_000, 1_500_000)

    has_emi = rng.random(n) > 0.45
    existing_emis = np.where(has_emi, income * np.clip(rng.gamma(2.0, 0.09, n), 0, 0.8), 0.0)
    employment_years = np.clip(rng.gamma(2.0, 2.5, n), 0, age - 20)
    credit_history_years = np.clip((age - 21) * rng.beta(3, 2, n), 0, None)
    credit_utilisation = rng.beta(2.0, 4.0, n)
    missed = rng.poisson(0.35 + 0.8 * credit_utilisation, n)
    enquiries = rng.poisson(1.0, n)

    names = np.array(list(LOAN_TYPES))
    loan_type = rng.choice(names, size=n, p=[LOAN_TYPES[t]["share"] for t in names])
    rate = np.array([LOAN_TYPES[t]["rate"] for t in loan_type])
    max_tenure = np.array([LOAN_TYPES[t]["tenure"] for t in loan_type])
    tenure = np.maximum(12, (max_tenure * rng.uniform(0.3, 1.0, n) / 12).round() * 12)
    secured = np.array([LOAN_TYPES[t]["secured"] for t in loan_type], dtype=float)
    # Requested amount: a multiple of annual income that depends on the product.
    multiple = np.select([loan_type == "home", loan_type == "car", loan_type == "education"],
                         [rng.lognormal(np.log(4.0), 0.5, n), rng.lognormal(np.log(0.8), 0.4, n),
                          rng.lognormal(np.log(1.2), 0.5, n)],
                         rng.lognormal(np.log(0.5), 0.6, n))
    lo = np.array([LOAN_TYPES[t]["min"] for t in loan_type])
    hi = np.array([LOAN_TYPES[t]["max"] for t in loan_type])
    amount = np.clip(multiple * income * 12, lo, hi).round(-3)

    new_emi = annuity_emi(amount, rate, tenure)
    foir = (existing_emis + new_emi) / income

    # Latent underwriting score: FOIR above ~55 % is penalised sharply (a kink, not linear).
    latent = (2.2 - 3.0 * foir - 4.0 * np.maximum(foir - 0.55, 0)
              + 0.9 * (np.log(income) - np.log(55_000))
              + 0.08 * np.minimum(credit_history_years, 15) - 1.6 * credit_utilisation
              - 0.75 * missed - 0.18 * enquiries + 0.05 * np.minimum(employment_years, 10)
              + 0.5 * secured - 0.015 * np.maximum(age - 50, 0) * tenure / 12)
    approved = (rng.random(n) < 1.0 / (1.0 + np.exp(-(latent + rng.normal(0, 0.5, n))))).astype(np.int8)

    X = np.column_stack([
        np.log(income), existing_emis / income, new_emi / income, foir, credit_history_years,
        credit_utilisation, missed, enquiries, employment_years, age, np.log(amount), tenure, secured,
    ]).astype(float)
    return LoanDataset(X=X, y=approved, gender=gender, age_band=age_band, loan_type=loan_type, seed=seed)


def population_defaults(ds: LoanDataset | None = None) -> dict[str, float]:
    """Median raw inputs, used for anything the customer did not tell us (documented in the card)."""
    ds = ds or generate(5_000)
    col = {name: ds.X[:, i] for i, name in enumerate(FEATURES)}
    return {
        "credit_history_years": float(np.median(col["credit_history_years"])),
        "credit_utilisation": float(np.median(col["credit_utilisation"])),
        "missed_payments_24m": 0.0,
        "recent_enquiries_6m": 1.0,
        "employment_years": float(np.median(col["employment_years"])),
        "age": float(np.median(col["age"])),
        "existing_emis": 0.0,
    }
