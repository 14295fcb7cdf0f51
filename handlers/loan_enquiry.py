"""Loan_Enquiry: indicative loan eligibility, scored under homomorphic encryption.

The handler collects loan type, amount, tenure, monthly income and existing EMIs, asks the
bank-side scoring client (``privacy.client``) to encrypt them and have the scoring service
evaluate the model on the ciphertext, then explains the outcome with the main factors and
the product's rate range. Nothing about the model's weights is said. If the service is down
or slow, the customer is told so and offered a hand-off; nothing crashes.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from app.bank.facts import load_facts
from app.core.errors import SahayakError
from app.core.money import format_money, to_decimal
from app.text.entities import parse_amount
from handlers.base import HandlerContext, Reply, Risk, Slot, SlotError
from handlers.registry import handler
from privacy.client import ScoringUnavailable

_KINDS = ("home", "car", "personal", "education", "gold")
_SYNONYMS = {"house": "home", "housing": "home", "flat": "home", "property": "home", "vehicle": "car",
             "auto": "car", "bike": "car", "study": "education", "studies": "education", "college": "education",
             "jewellery": "gold", "jewelry": "gold", "business": "personal", "wedding": "personal",
             "medical": "personal"}
# Counts the numbers a message mentions ("60k", "1.5 lakh" and "₹60,000" are one each).
_NUMBER = re.compile(r"(\d[\d,]*(?:\.\d+)?)\s*(k|thousand|lakhs?|lacs?|l|crores?|cr|million|m)?\b", re.I)
_ZERO = re.compile(r"^\s*(?:rs\.?|inr|₹)?\s*0+(?:\.0+)?\s*(?:rs\.?|inr|rupees?|/-)?\s*$", re.I)
_INCOME_CUE = re.compile(r"\b(earn\w*|salary|income|take[- ]home|per month|a month|monthly|p\.?m\.?)\b", re.I)
_NONE = re.compile(r"^\s*(no|none|nil|zero|nothing|na|n/a|no emis?|i don'?t have any|don'?t have any|koi nahi|koi nahin|"
                   r"kuch nahi|kuchh nahi|kuch bhi nahi|nahi|nahin|nai|shunya)\b", re.I)


def parse_inr(value: Any) -> Decimal | None:
    """A rupee amount from an entity dict, a number or text like "60k", "1.5 lakh", "₹60,000".

    Text goes through the one amount parser, :func:`app.text.entities.parse_amount`; the
    result is an exact two-decimal :class:`~decimal.Decimal`.
    """
    if isinstance(value, dict):
        value = value.get("value")
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return to_decimal(value)
    text = str(value or "")
    if _ZERO.match(text):  # "0" EMIs: the entity parser only finds positive amounts
        return Decimal("0.00")
    amount = parse_amount(text)
    return None if amount is None else to_decimal(amount.value)


def _product(kind: str, ctx: HandlerContext) -> dict[str, Any]:
    """Rates and limits of a loan product: from the bank core, else from data/bank_facts.yaml."""
    try:
        p = ctx.bank.loan_product(kind)
        return {"kind": p.kind, "name": p.name, "rate_min": float(p.rate_min), "rate_max": float(p.rate_max),
                "max_tenure_years": int(p.max_tenure_years), "min_amount": float(p.min_amount),
                "max_amount": float(p.max_amount)}
    except Exception:  # noqa: BLE001 - the bank may not be seeded (CLI use); the facts file is the source
        facts = load_facts()["loans"][kind]
        return {"kind": kind, "name": f"{kind.title()} Loan", "rate_min": float(facts["rate_pct_min"]),
                "rate_max": float(facts["rate_pct_max"]), "max_tenure_years": int(facts["max_tenure_years"]),
                "min_amount": float(facts["min_amount_inr"]), "max_amount": float(facts["max_amount_inr"])}


def _loan_type(value: Any, ctx: HandlerContext) -> str:
    text = str(value).lower()
    for kind in _KINDS:
        if kind in text:
            return kind
    for word, kind in _SYNONYMS.items():
        if word in text:
            return kind
    raise SlotError("We offer home, car, personal, education and gold loans.")


def _amount(value: Any, ctx: HandlerContext) -> float:
    parsed = parse_inr(value)
    if parsed is None or parsed <= 0:
        raise SlotError("That doesn't look like an amount.")
    amount = float(parsed)  # slots hold JSON numbers; the scoring features are floats
    if isinstance(value, dict) and value.get("currency", "INR") != "INR":
        raise SlotError("Our loans are in rupees (INR).")
    # "I earn 60,000 a month" is an income, not the loan amount: keep it for the income slot.
    if _INCOME_CUE.search(ctx.text or "") and len(_NUMBER.findall(ctx.text or "")) == 1:
        ctx.slots.setdefault("monthly_income", amount)
        raise SlotError("")
    kind = ctx.slots.get("loan_type")
    if kind:
        p = _product(kind, ctx)
        if not p["min_amount"] <= amount <= p["max_amount"]:
            raise SlotError(f"A {kind} loan can be between {format_money(p['min_amount'])} and "
                            f"{format_money(p['max_amount'])}.")
    return amount


def _tenure(value: Any, ctx: HandlerContext) -> int:
    text = str(value.get("value") if isinstance(value, dict) else value).lower()
    m = re.search(r"(\d+(?:\.\d+)?)\s*(years?|yrs?|y|months?|mos?|m)?\b", text)
    if not m:
        raise SlotError("Please give the repayment period, e.g. '5 years' or '36 months'.")
    n = float(m.group(1))
    months = int(round(n if (m.group(2) or "").startswith("m") else n * 12))
    if months < 6:
        raise SlotError("The shortest repayment period is 6 months.")
    kind = ctx.slots.get("loan_type")
    if kind:
        max_years = _product(kind, ctx)["max_tenure_years"]
        if months > max_years * 12:
            raise SlotError(f"A {kind} loan can run for at most {max_years} years.")
    return months


def _income(value: Any, ctx: HandlerContext) -> float:
    income = parse_inr(value)
    if income is None or income <= 0:
        raise SlotError("Please tell me your monthly take-home income in rupees, e.g. '60,000'.")
    if income > Decimal("1e8"):
        raise SlotError("That income looks too large; please give your monthly income.")
    return float(income)


def _emis(value: Any, ctx: HandlerContext) -> float:
    if not isinstance(value, (dict, int, float)) and _NONE.search(str(value)):
        return 0.0
    emis = parse_inr(value)
    if emis is None or emis < 0:
        raise SlotError("Please give the total of your current EMIs per month, or say 'none'.")
    return float(emis)


# One rupee amount written with digits ("40 lakh", "₹1.2L", "12.5k", "60,000") and what is around it.
_AMOUNT_TEXT = re.compile(
    r"(?:₹|rs\.?|inr)?\s*\d[\d,]*(?:\.\d+)?\s*(?:k|thousand|lakhs?|lacs?|l|crores?|cr)?\b(?!\s*(?:years?|yrs?|saal|months?|%))", re.I)
_PROPERTY_CUE = re.compile(r"\b(worth|valued?|value|price[ds]?|costs?|costing|property|flat|house|car|bike)\W*(?:\w+\W+){0,3}$", re.I)
_EMI_CUE = re.compile(r"\bemis?\b|\bexisting loans?\b|\bpaying\b", re.I)
_INCOME_NEAR = re.compile(r"\b(earn\w*|salary|income|take[- ]home|kamata|kamati|kamaai)\W*(?:\w+\W+){0,3}$", re.I)
_MONTHLY_AFTER = re.compile(r"^\s*(?:a|per|every|each|/)\s*month\b|^\s*(?:monthly|p\.?m\.?|mahina|mahine)\b", re.I)
_NO_EMIS = re.compile(r"\b(?:no|zero|koi|without)\s+(?:existing\s+|other\s+)?(?:emis?|loans?)\b|\bemis?\s*(?:nahi|none|nil)\b", re.I)


def _extract(text: str) -> dict[str, Any]:
    """Slot values from one message that may give everything at once; each amount is read in context:
    an income ("I earn 1.5 lakh a month"), EMIs ("pay 12k in EMIs"), a property's value ("a flat worth
    60 lakh", ignored) or the loan amount (the first other amount)."""
    found: dict[str, Any] = {}
    if m := re.search(r"\b(?:for|over|in|within|of)?\s*(\d+(?:\.\d+)?)\s*(?:years?|yrs?|saal|months?|mahine)\b", text, re.I):
        found["tenure_months"] = m.group(0).strip()
    if _NO_EMIS.search(text):
        found["existing_emis"] = 0.0
    for m in _AMOUNT_TEXT.finditer(text):
        raw = m.group(0).strip()
        value = parse_inr(raw)
        if value is None or value <= 0 or not re.search(r"[₹a-z]|\d{4,}|,", raw, re.I):
            continue  # a bare small number ("3") is a count or a tenure, not a rupee amount
        before, after = text[max(0, m.start() - 40): m.start()], text[m.end(): m.end() + 25]
        clause = re.split(r"[,;.]|\band\b|\baur\b", before)[-1]
        if _INCOME_NEAR.search(before) or _MONTHLY_AFTER.search(after) and not _EMI_CUE.search(clause + after[:15]):
            found.setdefault("monthly_income", float(value))
        elif _EMI_CUE.search(clause) or re.match(r"^\s*(?:in\s+|of\s+|as\s+)?(?:existing\s+)?emis?\b", after, re.I):
            found.setdefault("existing_emis", float(value))
        elif _PROPERTY_CUE.search(clause):
            continue
        else:
            found.setdefault("amount", float(value))
    return found


def _emi(principal: float, annual_rate_pct: float, months: int) -> float:
    r = annual_rate_pct / 1200.0
    return principal * r * (1 + r) ** months / ((1 + r) ** months - 1)


_WHAT_IF = re.compile(r"\b(?:what if|what about|how about|instead|agar|suppose|kya ho|if i|if we|and if)\b", re.I)
_TENURE_TEXT = re.compile(r"(\d+(?:\.\d+)?)\s*(?:years?|yrs?|saal|months?|mahine)\b", re.I)
_IMPROVE = re.compile(r"\b(?:improve|better|increase|raise|boost|chances|sudhar|badha)\b", re.I)


def _followup(ctx: HandlerContext) -> Reply | None:
    """After a decision: "why?" and "how can I improve it?" explain it from the recorded factors;
    "what if I repay over 15 years?" scores again with the new tenure (or amount)."""
    topic = ctx.topic or {}
    if "approved" not in topic or not ctx.slots.get("loan_type"):
        return None
    text = ctx.text or ""
    tenure = _TENURE_TEXT.search(text)
    amount = _extract(text).get("amount")
    if (tenure or amount) and (_WHAT_IF.search(text) or len(text.split()) <= 8):
        slots = dict(ctx.slots)
        try:
            if tenure:
                slots["tenure_months"] = _tenure(tenure.group(0), ctx)
            if amount:
                slots["amount"] = _amount(amount, ctx)
        except SlotError as exc:
            return Reply(str(exc), outcome="refused")
        ctx.slots.clear()
        ctx.slots.update(slots)
        return loan_enquiry(ctx)
    factors = topic.get("factors") or []
    listed = "; ".join(factors) if factors else "the amount against your income and existing EMIs"
    if topic.get("approved"):
        text_out = f"The check came out positive mainly because of: {listed}."
    else:
        text_out = f"The check came out negative mainly because of: {listed}."
    if _IMPROVE.search(text) or not topic.get("approved"):
        text_out += (" What usually helps: a smaller loan amount, a longer tenure (a lower EMI), paying down "
                     "existing EMIs first, or adding a co-applicant's income. You can ask me, for example, "
                     "\"what if I repay over 15 years?\"")
    return Reply(text_out, data={"factors": factors, "approved": topic.get("approved")})


@handler(
    "Loan_Enquiry",
    slots=(
        Slot("loan_type", prompt="Which loan are you interested in — home, car, personal, education or gold?",
             free_text=True, validator=_loan_type),
        Slot("amount", prompt="How much would you like to borrow?", free_text=True, validator=_amount),
        Slot("tenure_months", prompt="Over how many years would you like to repay it?", entity="tenure",
             free_text=True, validator=_tenure),
        Slot("monthly_income", prompt="What is your monthly take-home income?", free_text=True, validator=_income),
        Slot("existing_emis", prompt="How much do you pay in EMIs on existing loans each month? (say 'none' if nothing)",
             free_text=True, validator=_emis),
    ),
    risk=Risk.LOW,
    description="check indicative loan eligibility (scored under homomorphic encryption)",
    topic="loans: eligibility, interest rates, EMI",
    extract=_extract,
    followup=_followup,
)
def loan_enquiry(ctx: HandlerContext) -> Reply:
    """Score eligibility on encrypted data and explain the outcome."""
    s = ctx.slots
    product = _product(s["loan_type"], ctx)
    # The amount or tenure may have been given before the loan type was known: check them now.
    if not product["min_amount"] <= float(s["amount"]) <= product["max_amount"]:
        return Reply(f"A {s['loan_type']} loan can be between {format_money(product['min_amount'])} and "
                     f"{format_money(product['max_amount'])}; please ask again with an amount in that range.",
                     outcome="refused", data={"scoring_request_id": None, "timings": {}})
    if int(s["tenure_months"]) > product["max_tenure_years"] * 12:
        return Reply(f"A {s['loan_type']} loan can run for at most {product['max_tenure_years']} years; "
                     "please ask again with a shorter tenure.",
                     outcome="refused", data={"scoring_request_id": None, "timings": {}})
    mid_rate = (product["rate_min"] + product["rate_max"]) / 2
    features = {
        "monthly_income": float(s["monthly_income"]), "existing_emis": float(s["existing_emis"]),
        "loan_amount": float(s["amount"]), "tenure_months": float(s["tenure_months"]),
        "secured": 1.0 if s["loan_type"] in ("home", "car", "gold") else 0.0, "annual_rate_pct": mid_rate,
    }
    rate_text = f"{product['name']}s are at {product['rate_min']:.2f}–{product['rate_max']:.2f} % p.a."
    try:
        result = ctx.services.scoring_client().score(features)
    except ScoringUnavailable:
        return Reply(
            "I can't check your eligibility right now: our secure scoring service isn't responding. "
            f"{rate_text} Would you like me to connect you with a loan officer?",
            outcome="failed", data={"offer_handoff": True, "scoring_request_id": None, "timings": {},
                                    "scoring_error": "unavailable"})
    except SahayakError as exc:
        return Reply(f"I couldn't score this request ({exc}). Would you like me to connect you with a loan officer?",
                     outcome="failed", data={"offer_handoff": True, "scoring_request_id": None, "timings": {},
                                             "scoring_error": "refused"})

    amount, months = float(s["amount"]), int(s["tenure_months"])
    years = f"{months // 12} years" if months % 12 == 0 else f"{months} months"
    emi_low = _emi(amount, product["rate_min"], months)
    factors = "; ".join(result.factors)
    if result.approved:
        text = (f"Good news: on what you've told me, you look eligible for a {s['loan_type']} loan of "
                f"{format_money(round(amount))} over {years} (indicative score {result.probability:.0%}).")
        if factors:
            text += f" What helps: {factors}."
    else:
        text = (f"On what you've told me, a {s['loan_type']} loan of {format_money(round(amount))} over {years} "
                f"is unlikely to be approved right now (indicative score {result.probability:.0%}).")
        if factors:
            text += f" The main factors: {factors}."
        text += " A smaller amount or a longer tenure may help."
    text += (f" {rate_text} At {product['rate_min']:.2f} % the EMI would be about {format_money(round(emi_low))}. "
             "This is an indicative check, not a sanction; your details were encrypted before scoring.")
    return Reply(text, outcome="success", data={
        "scoring_request_id": result.request_id,
        "timings": {k: round(v, 3) for k, v in result.timings.items()},
        "approved": result.approved, "probability": round(result.probability, 4),
        "factors": result.factors, "model_version": result.model_version,
        "assumed_inputs": sorted(result.assumed), "loan_type": s["loan_type"],
    })
