"""Runs the YAML conversation scripts in tests/conversations/ through the real pipeline.

Each script gets a fresh seeded bank (SQLite) and its own state folder; the intent model is
the real default classifier (trained once per test session in its fast configuration).

Script format::

    name: …
    user: asha                      # the logged-in customer (null: nobody logged in)
    settings: {clarify_threshold: 0.99}   # optional overrides
    services: [scoring]             # start the real encrypted scoring service
    turns:
      - user: "send 2500 to ravi"   # {otp} / {wrong_otp} use the last SMS in the outbox
        intent: Fund_Transfer       # optional expectations …
        handler: Fund_Transfer
        state: awaiting_confirmation
        entities: {amount: {value: 2500.0, currency: INR}}
        reply_contains: ["₹2,500.00"]
        reply_excludes: ["₹2,000.00"]
        data_has: [citations]
        state_not: done_transfer     # no completed transfer on this turn
    expect:                         # checked against the bank afterwards
      transfers: 1
      balances: {savings: "122500.00"}
      cards: {"4321": blocked}
      handoffs: 1
      requests: {cheque_book: 1}      # service requests of each kind
      email: new@example.in           # the customer's registered e-mail
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.conversation.support import SupportStore
from privacy.redact import redact

SCRIPTS = sorted((Path(__file__).parent / "conversations").glob("*.yaml"))


@pytest.fixture(scope="session")
def classifier():
    from app.core.settings import get_settings
    from models.intents import get_classifier

    return get_classifier(get_settings())


@pytest.fixture(scope="session")
def scoring_service():
    """The real encrypted scoring service on a free loopback port (for scripts with `services: [scoring]`)."""
    import socket

    from privacy.service import start_in_background

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    service = start_in_background(host="127.0.0.1", port=port)
    yield service
    service.stop()


def _last_otp(home: Path) -> str:
    log = home / "outbox" / "sms.log"
    codes = re.findall(r"\b(\d{6})\b", log.read_text(encoding="utf-8")) if log.exists() else []
    assert codes, "no OTP SMS was written to the outbox"
    return codes[-1]


def _fill(text: str, home: Path) -> str:
    if "{otp}" in text:
        text = text.replace("{otp}", _last_otp(home))
    if "{wrong_otp}" in text:
        right = _last_otp(home)
        text = text.replace("{wrong_otp}", "000000" if right != "000000" else "111111")
    return text


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_conversation(script: Path, fresh_home: Path, classifier: Any, monkeypatch: pytest.MonkeyPatch,
                      request: pytest.FixtureRequest) -> None:
    from app.bank.seed import seed
    from app.bank.service import BankService
    from app.conversation.wiring import build_assistant
    from app.core.settings import get_settings, reset_settings
    from app.core.types import MessageEnvelope

    spec = yaml.safe_load(script.read_text(encoding="utf-8"))
    for key, value in (spec.get("settings") or {}).items():
        monkeypatch.setenv(f"SAHAYAK_{key.upper()}", str(value))
    if "scoring" in (spec.get("services") or []):
        service = request.getfixturevalue("scoring_service")
        monkeypatch.setenv("SAHAYAK_SCORING_URL", service.base_url)
    reset_settings()
    settings = get_settings()
    seed(settings.db_url)
    bank = BankService(settings.db_url)
    from provenance.tracker import Tracker
    from provenance.verify import verify_log

    tracker = Tracker(settings, redactor=redact)
    assistant = build_assistant(settings=settings, bank=bank, classifier=classifier, tracker=tracker)
    user = spec["user"]
    session = f"test-{script.stem}"
    try:
        for n, turn in enumerate(spec["turns"], 1):
            text = _fill(str(turn["user"]), fresh_home)
            result = assistant.handle(MessageEnvelope(user_id=user, session_id=session, channel="test", text=text))
            where = f"{script.name} turn {n} ({turn['user']!r}) → {result.public()}"
            if "intent" in turn:
                assert result.intent == turn["intent"], where
            if "handler" in turn:
                assert result.handler == turn["handler"], where
            if "state" in turn:
                assert result.state == turn["state"], where
            if "act" in turn:
                assert result.dialogue_act == turn["act"], where
            if "policy" in turn:
                assert result.policy == turn["policy"], where
            for key, value in (turn.get("entities") or {}).items():
                assert result.entities.get(key) == value, where
            for fragment in turn.get("reply_contains", []):
                assert fragment.lower() in result.reply.lower(), where
            for fragment in turn.get("reply_excludes", []):
                assert fragment.lower() not in result.reply.lower(), where
            for key in turn.get("data_has", []):
                assert result.data.get(key), where
            if turn.get("state_not") == "done_transfer":
                assert not (result.handler == "Fund_Transfer" and result.state == "done"
                            and result.outcome == "success"), where
    finally:
        assistant.close()
    _check_bank(spec.get("expect") or {}, bank, user)
    # Every turn left a signed, chained record that verifies.
    report = verify_log(settings.provenance_dir, settings=settings)
    assert report.ok, report.report()["failures"]
    turn_records = [r for r in report.records if r.type in ("turn", "inference")]
    assert len(turn_records) == len(spec["turns"]), report.report()
    # Every model a turn names has its own record in the same log (datasets → model → turn).
    models = {f"{r.record['name']}@{r.record['version']}" for r in report.records if r.type == "model"}
    for r in turn_records:
        for key, value in r.record["model_versions"].items():
            if key in ("intent", "scoring"):
                assert value in models, (key, value, models)
    # The loan model's record says how it was made fair (bias mitigation is part of its lineage).
    loan_models = [r for r in report.records if r.type == "model" and r.record["name"] == "loan-scoring"]
    assert bool(loan_models) == any("scoring" in r.record["model_versions"] for r in turn_records)
    for r in loan_models:
        # A training record (sahayak scoring train wrote it here) or, registered at first use, the card's claim.
        source = r.record.get("hyperparameters") or r.record.get("claimed") or {}
        mitigation = source["fairness_mitigation"]
        assert mitigation["method"] == "reweigh+penalty" and mitigation["bound_met"], mitigation


def _check_bank(expect: dict[str, Any], bank: Any, user: str | None) -> None:
    if not expect:
        return
    customer = bank.get_customer(user)
    if "transfers" in expect:  # made in this conversation (the seed adds a short history, keys "seed-…")
        made = [t for t in bank.recent_transfers(customer.id, limit=1000) if not t.idempotency_key.startswith("seed-")]
        assert len(made) == expect["transfers"]
    for ref, value in (expect.get("balances") or {}).items():
        assert bank.resolve_account(customer.id, ref).balance == Decimal(value), ref
    for last4, status in (expect.get("cards") or {}).items():
        card = next(c for c in bank.cards(customer.id) if c.last4 == str(last4))
        assert card.status == status
    for kind, n in (expect.get("requests") or {}).items():
        assert len(bank.service_requests(customer.id, kind)) == n, kind
    if "email" in expect:
        assert customer.email == expect["email"]
    if "handoffs" in expect:
        assert len(SupportStore(bank.db).list_handoffs()) == expect["handoffs"]
