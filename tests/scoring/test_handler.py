"""Loan_Enquiry against the real service: the happy path, a real outage and a real stall."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from app.bank.seed import seed
from app.bank.service import BankService
from app.conversation.dialogue import DialogueManager
from app.conversation.frame import DialogueState
from app.core.net import free_port
from app.core.settings import get_settings
from handlers.base import HandlerContext
from handlers.loan_enquiry import parse_inr
from handlers.registry import get_handler
from privacy.client import ScoringClient
from privacy.service_process import start_in_background
from tests.dialogue_helpers import understood


@pytest.fixture()
def bank(fresh_home):
    settings = get_settings()
    seed(settings.db_url)
    return BankService(settings.db_url)


def _ctx(bank, client, **slots):
    base = {"loan_type": "personal", "amount": 300_000.0, "tenure_months": 36, "monthly_income": 95_000.0,
            "existing_emis": 0.0}
    base.update(slots)
    return HandlerContext(session_id="s1", user_id=None, customer_id=None, text="", entities={}, slots=base,
                          settings=get_settings(), bank=bank, services={"scoring": client})


def test_eligible_customer_gets_outcome_factors_and_rates(bank, client):
    reply = get_handler("Loan_Enquiry").fn(_ctx(bank, client))
    assert reply.outcome == "success" and reply.data["approved"] is True
    assert reply.data["scoring_request_id"] and reply.data["timings"]["e2e_ms"] > 0
    product = bank.loan_product("personal")
    assert f"{float(product.rate_min):.2f}" in reply.text and f"{float(product.rate_max):.2f}" in reply.text
    assert reply.data["factors"] and reply.data["factors"][0] in reply.text
    assert "weight" not in reply.text.lower()


def test_stretched_customer_is_told_why(bank, client):
    reply = get_handler("Loan_Enquiry").fn(_ctx(bank, client, amount=2_000_000.0, monthly_income=30_000.0,
                                                existing_emis=9_000.0, tenure_months=24))
    assert reply.outcome == "success" and reply.data["approved"] is False
    assert "unlikely" in reply.text and "EMIs" in reply.text


def test_service_down_offers_handoff(bank, artifact):
    """Start a real service, score once, stop it for real, then ask again."""
    svc = start_in_background(host="127.0.0.1", port=free_port(), timeout=90)
    c = ScoringClient(base_url=svc.base_url, artifact=artifact, timeout=5)
    try:
        assert get_handler("Loan_Enquiry").fn(_ctx(bank, c)).outcome == "success"
        svc.stop()
        reply = get_handler("Loan_Enquiry").fn(_ctx(bank, c))
    finally:
        svc.stop()
        c.close()
    assert reply.outcome == "failed" and reply.data["offer_handoff"] is True
    assert "loan officer" in reply.text and "scoring_request_id" in reply.data


def test_slow_service_times_out_and_offers_handoff(bank, artifact):
    """A listener that accepts connections but never answers: the client gives up on time."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    conns = []
    stop = threading.Event()

    def accept():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conns.append(srv.accept()[0])
            except OSError:
                pass

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    c = ScoringClient(base_url=f"http://127.0.0.1:{srv.getsockname()[1]}", artifact=artifact, timeout=0.5)
    try:
        started = time.monotonic()
        reply = get_handler("Loan_Enquiry").fn(_ctx(bank, c))
        assert time.monotonic() - started < 5
    finally:
        stop.set()
        t.join()
        for conn in conns:
            conn.close()
        srv.close()
        c.close()
    assert reply.outcome == "failed" and reply.data["offer_handoff"] is True


def test_conversation_collects_slots_then_scores(bank, client):
    """The dialogue manager drives the handler's slots turn by turn (real validators)."""
    dm = DialogueManager(get_settings(), bank, services={"scoring": client})
    state = DialogueState()

    def say(text, entities=None, intent="Loan_Enquiry", confidence=0.95):
        # The first message asks; every later one answers what the bot asked.
        act = "request" if state.frame is None else "inform"
        return dm.turn(state, understood(state, text, intent, confidence, act, entities))

    out = say("I earn 95,000 a month, can I get a loan?", {"amount": {"value": 95000.0, "currency": "INR"}})
    assert out.state == "awaiting_slot" and "Which loan" in out.reply
    out = say("a car loan", {"loan_type": "car"}, intent="Out_Of_Scope", confidence=0.3)
    assert out.state == "awaiting_slot" and "borrow" in out.reply
    out = say("50 crore", {"amount": {"value": 5e8, "currency": "INR"}}, intent="Out_Of_Scope", confidence=0.3)
    assert out.state == "awaiting_slot" and "between" in out.reply  # product limits from the bank
    out = say("6 lakh", {"amount": {"value": 600000.0, "currency": "INR"}}, intent="Out_Of_Scope", confidence=0.3)
    assert "years" in out.reply
    out = say("5 years", intent="Out_Of_Scope", confidence=0.3)
    # The income given in the first message was kept, so the next question is about EMIs.
    assert "EMIs" in out.reply, out.reply
    out = say("none", intent="Out_Of_Scope", confidence=0.3)
    assert out.state == "done" and "car loan" in out.reply
    assert out.data["scoring_request_id"]


def test_parse_inr_understands_indian_amounts():
    assert parse_inr("60k") == 60_000
    assert parse_inr("₹1,20,000 per month") == 120_000
    assert parse_inr("1.5 lakh") == 150_000
    assert parse_inr("2 crore") == 20_000_000
    assert parse_inr({"value": 5000.0, "currency": "INR"}) == 5000
    assert parse_inr("no idea") is None


def test_amount_given_before_the_loan_type_is_rechecked(bank, client):
    reply = get_handler("Loan_Enquiry").fn(_ctx(bank, client, loan_type="gold", amount=9_000_000.0))
    assert reply.outcome == "refused" and "between" in reply.text and reply.data["scoring_request_id"] is None
    reply = get_handler("Loan_Enquiry").fn(_ctx(bank, client, loan_type="gold", tenure_months=120))
    assert reply.outcome == "refused" and "at most 3 years" in reply.text
