"""The knowledge base states exactly the numbers of data/bank_facts.yaml (and the settings handlers use)."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from retrieval.corpus import load_corpus

ROOT = Path(__file__).resolve().parents[2]
FACTS = yaml.safe_load((ROOT / "data" / "bank_facts.yaml").read_text(encoding="utf-8"))
DOCS = {d.doc_id: d for d in load_corpus(ROOT / "data" / "kb")}
ALL_TEXT = "\n".join(d.text for d in DOCS.values())


def _numbers(obj) -> set[Decimal]:
    """Every number in the facts file, including those inside keys such as "7-45 days"."""
    out: set[Decimal] = set()
    if isinstance(obj, dict):
        for k, v in obj.items():
            out |= _numbers(k) | _numbers(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            out |= _numbers(v)
    elif isinstance(obj, bool):
        pass
    elif isinstance(obj, (int, float)):
        out.add(Decimal(str(obj)).normalize())
    elif isinstance(obj, str):
        out |= {Decimal(m.replace(",", "")).normalize() for m in re.findall(r"\d[\d,]*(?:\.\d+)?", obj)}
    return out


KNOWN = _numbers(FACTS)
# Senior-citizen FD rates are stated as regular rate + the senior extra.
SENIOR = {(Decimal(str(r)) + Decimal(str(FACTS["deposits"]["senior_citizen_extra_pct"]))).normalize()
          for r in FACTS["deposits"]["fd_rates_pct"].values()}


def rupees(v: int | float) -> str:
    """₹ amount in Indian digit grouping, as the KB writes it (₹2,00,000)."""
    s = str(int(v))
    if len(s) <= 3:
        return f"₹{s}"
    head, tail = s[:-3], s[-3:]
    groups = []
    while len(head) > 2:
        groups.insert(0, head[-2:])
        head = head[:-2]
    return "₹" + ",".join([head, *groups, tail]) if head else "₹" + ",".join([*groups, tail])


def test_kb_has_enough_documents_with_front_matter() -> None:
    assert len(DOCS) >= 60
    for d in DOCS.values():
        assert d.title and d.category and re.fullmatch(r"\d{4}-\d{2}-\d{2}", d.effective_date), d.doc_id


@pytest.mark.parametrize("pattern", [r"₹\s?(\d[\d,]*(?:\.\d+)?)", r"(\d+(?:\.\d+)?)\s?%",
                                     r"(\d+)\s(?:days|hours|minutes|years)\b"])
def test_every_number_in_the_kb_comes_from_bank_facts(pattern: str) -> None:
    unknown = {}
    for d in DOCS.values():
        for m in re.findall(pattern, d.text):
            n = Decimal(m.replace(",", "")).normalize()
            if n not in KNOWN and n not in SENIOR:
                unknown.setdefault(d.doc_id, []).append(m)
    assert not unknown, f"numbers not in bank_facts.yaml: {unknown}"


def test_transfer_limits_match_facts_and_settings() -> None:
    from app.core.settings import Settings

    t = FACTS["transfers"]
    s = Settings()
    assert Decimal(t["otp_threshold_inr"]) == s.otp_threshold
    assert Decimal(t["per_transfer_limit_inr"]) == s.per_transfer_limit
    assert Decimal(t["daily_limit_inr"]) == s.daily_transfer_limit
    doc = DOCS["pay-chat-transfer-limits"].text
    for v in (t["otp_threshold_inr"], t["per_transfer_limit_inr"], t["daily_limit_inr"]):
        assert rupees(v) in doc
    otp = DOCS["pay-otp-rules"].text
    assert f"{t['otp_validity_minutes']} minutes" in otp and f"{t['otp_lockout_minutes']} minutes" in otp
    assert rupees(t["upi_per_transaction_inr"]) in DOCS["pay-upi-limits"].text
    assert rupees(t["imps_per_transaction_inr"]) in DOCS["pay-imps"].text
    assert rupees(t["rtgs_min_inr"]) in DOCS["pay-rtgs"].text


def test_loan_rates_match_facts() -> None:
    for kind, f in FACTS["loans"].items():
        doc = DOCS[f"loan-{kind}"].text
        summary = DOCS["loan-rates-summary"].text
        rng = f"{f['rate_pct_min']:.2f}% to {f['rate_pct_max']:.2f}%"
        assert rng in doc and rng in summary, kind
        assert f"{f['max_tenure_years']} years" in doc
        assert rupees(f["min_amount_inr"]) in doc and rupees(f["max_amount_inr"]) in doc
        assert f"{f['processing_fee_pct']:.2f}%" in doc
    assert f"{FACTS['loans']['gold']['ltv_pct']}%" in DOCS["loan-gold"].text


def test_deposit_and_account_facts() -> None:
    fd = DOCS["dep-fd-rates"].text
    for tenure, rate in FACTS["deposits"]["fd_rates_pct"].items():
        assert f"{rate:.2f}%" in fd, tenure
    assert f"{FACTS['deposits']['senior_citizen_extra_pct']:.2f}%" in DOCS["dep-senior-citizen"].text
    assert f"{FACTS['deposits']['rd_rate_pct']:.2f}%" in DOCS["dep-recurring-deposit"].text
    mab = DOCS["acc-minimum-balance"].text
    for area, v in FACTS["accounts"]["minimum_average_balance_inr"].items():
        assert rupees(v) in mab, area
    charges = DOCS["acc-non-maintenance-charges"].text
    for area, v in FACTS["accounts"]["non_maintenance_charge_inr"].items():
        assert rupees(v) in charges, area
    atm = FACTS["atm"]
    assert rupees(atm["debit_classic_daily_withdrawal_inr"]) in DOCS["atm-withdrawal-limits"].text
    assert rupees(atm["debit_platinum_daily_withdrawal_inr"]) in DOCS["atm-withdrawal-limits"].text
    assert rupees(atm["charge_per_extra_transaction_inr"]) in DOCS["atm-free-transactions"].text


def test_card_block_is_immediate_and_not_undoable_in_chat() -> None:
    c = FACTS["cards"]
    assert c["block_is_immediate"] and not c["unblock_via_chat"]
    block = DOCS["card-block"].text.lower()
    assert "immediately" in block and "cannot be undone in the chat" in block
    assert "branch" in block and FACTS["bank"]["customer_care"] in block
    assert "cannot unblock" in DOCS["card-unblock"].text.lower()
    assert rupees(c["replacement_fee_inr"]) in DOCS["card-replace"].text
    assert f"{c['dispute_window_days']} days" in DOCS["card-dispute"].text
    assert f"{c['chargeback_resolution_days']} days" in DOCS["card-chargeback"].text


def test_contacts_and_complaint_timelines() -> None:
    care = FACTS["bank"]["customer_care"]
    wrong = set(re.findall(r"1800-\d{3}-\d{4}", ALL_TEXT)) - {care}
    assert not wrong, f"unknown customer care numbers: {wrong}"
    comp = DOCS["complaint-raise"].text
    assert f"{FACTS['complaints']['acknowledge_hours']} hours" in comp
    assert f"{FACTS['complaints']['resolve_days']} days" in comp
    assert FACTS["bank"]["grievance_email"] in comp
    assert "cms.rbi.org.in" in DOCS["complaint-escalation"].text
    for level, years in FACTS["kyc"]["periodic_update_years"].items():
        assert f"{years} years" in DOCS["kyc-periodic-update"].text, level
