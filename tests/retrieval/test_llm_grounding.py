"""The grounding check that decides whether an LLM-written answer may be used."""

from __future__ import annotations

from retrieval.llm import check_grounding

PASSAGES = {"pay-upi-limits": "Maximum per UPI transaction: ₹1,00,000. UPI payments are free.",
            "card-replace": "Replacement fee: ₹200 plus GST. Delivery: within 7 days."}


def test_grounded_answer_passes() -> None:
    r = check_grounding("You can pay up to ₹1,00,000 per UPI transaction [pay-upi-limits].", PASSAGES)
    assert r["grounded"] and r["cited"] == ["pay-upi-limits"]


def test_invented_number_fails() -> None:
    r = check_grounding("The UPI limit per transaction is 10,000 [pay-upi-limits].", PASSAGES)
    assert not r["grounded"] and r["unsupported_numbers"] == ["10000"]


def test_number_from_an_uncited_passage_fails() -> None:
    r = check_grounding("A new card costs ₹200 [pay-upi-limits].", PASSAGES)
    assert not r["grounded"] and "200" in r["unsupported_numbers"]


def test_unknown_or_missing_citation_fails() -> None:
    assert not check_grounding("It costs ₹200 [card-fees].", PASSAGES)["grounded"]
    assert not check_grounding("It costs ₹200 and arrives in 7 days.", PASSAGES)["grounded"]
    assert check_grounding("It costs ₹200 and arrives in 7 days [card-replace].", PASSAGES)["grounded"]
