"""The intent YAML data: required intents, sizes, no contradictions, loadable."""

from __future__ import annotations

from collections import Counter

from models.intents import load_dataset

PRODUCT = ["Check_Balance", "Fund_Transfer", "Open_Account", "Loan_Enquiry", "Card_Block", "Branch_Location", "FAQ", "Human_Handoff"]
# The service requests of issue 18 (handlers/card_delivery.py … transfer_status.py).
SERVICE = ["Card_Delivery_Status", "PIN_Reset", "Own_Account_Transfer", "Card_Bill_Payment", "Account_Statement",
           "Cheque_Book_Request", "Dispute", "Update_Contact", "Close_Account", "Transfer_Status"]


def test_training_data_sizes():
    ds = load_dataset("data/intents")
    counts = Counter(ds.labels)
    assert set(counts) == set(PRODUCT) | set(SERVICE) | {"Greeting", "Goodbye", "Out_Of_Scope"}
    for intent in PRODUCT + SERVICE:
        assert counts[intent] >= 60, intent
    assert counts["Greeting"] >= 30 and counts["Goodbye"] >= 30
    assert counts["Out_Of_Scope"] >= 150
    assert all(ds.descriptions[i].strip() for i in counts), "every intent needs a one-sentence description"


def test_no_text_carries_two_labels():
    ds = load_dataset("data/intents")
    seen: dict[str, str] = {}
    for text, label in zip(ds.texts, ds.labels):
        key = " ".join(text.lower().split())
        assert seen.setdefault(key, label) == label, f"{text!r} is both {seen[key]} and {label}"


def test_held_out_set_is_separate_and_large_enough():
    train = {" ".join(t.lower().split()) for t in load_dataset("data/intents").texts}
    ev = load_dataset("data/intents_eval")
    counts = Counter(ev.labels)
    assert all(n >= 20 for n in counts.values()) and len(counts) == 11
    overlap = [t for t in ev.texts if " ".join(t.lower().split()) in train]
    assert not overlap, overlap
