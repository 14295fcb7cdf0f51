"""Monitoring numbers from real pipeline turns (verified provenance log) and feedback."""

from __future__ import annotations

from app.conversation.monitoring import build_report, render_pngs
from privacy.redact import redact


def test_report_from_synthetic_records(tmp_path):
    turns = [
        {"session": "s1", "timestamp": "1", "intent": "Check_Balance", "confidence": 0.9, "handler": "Check_Balance",
         "outcome": "success", "state": "done", "latency_ms": 20, "stage_ms": {"understand": 8, "total": 20}},
        {"session": "s1", "timestamp": "2", "intent": "Fund_Transfer", "confidence": 0.95, "handler": "Fund_Transfer",
         "outcome": "success", "state": "awaiting_confirmation", "latency_ms": 30},
        {"session": "s2", "timestamp": "3", "intent": "FAQ", "confidence": 0.4, "handler": None,
         "outcome": "clarify", "state": "awaiting_clarification", "latency_ms": 25},
        {"session": "s3", "timestamp": "4", "intent": "Human_Handoff", "confidence": 0.99, "handler": "Human_Handoff",
         "outcome": "handoff", "state": "done", "latency_ms": 40},
    ]
    feedback = [
        {"predicted_intent": "Fund_Transfer", "correct_intent": "FAQ", "rating": -1},
        {"predicted_intent": "Check_Balance", "correct_intent": None, "rating": 1},
        {"predicted_intent": "FAQ", "correct_intent": None, "rating": -1},  # unlabelled thumbs-down: not counted
    ]
    rep = build_report(turns, feedback)
    assert rep["turns"] == 4 and rep["sessions"] == 3
    assert rep["rates"]["clarification"] == 0.25
    assert rep["rates"]["handoff_per_session"] == round(1 / 3, 4)
    assert rep["rates"]["abandonment_per_session"] == round(2 / 3, 4)  # s1 and s2 ended mid-task
    assert rep["feedback"]["labelled"] == 2 and rep["feedback"]["intent_accuracy"] == 0.5
    assert rep["feedback"]["high_risk_false_positives"] == 1
    assert rep["handlers"]["Check_Balance"]["success_rate"] == 1.0
    assert rep["latency_ms"]["understand"]["p50"] == 8
    pngs = render_pngs(rep, tmp_path)
    assert {p.name for p in pngs} == {"confusion.png", "handlers.png", "latency.png"}
    assert all(p.stat().st_size > 1000 for p in pngs)


def test_report_cli_on_real_turns(fresh_home):
    import json

    from typer.testing import CliRunner

    from app.bank.seed import seed
    from app.cli import root
    from app.conversation.wiring import build_assistant
    from app.core.settings import get_settings
    from app.core.types import MessageEnvelope
    from models.intents import get_classifier
    from provenance.tracker import Tracker

    settings = get_settings()
    seed(settings.db_url)
    a = build_assistant(settings, classifier=get_classifier(settings), tracker=Tracker(settings, redactor=redact))
    for text in ["hello", "what is my balance", "send 500 to ravi"]:
        r = a.handle(MessageEnvelope(user_id="asha", session_id="m1", text=text))
    a.support.add_feedback("m1", r.turn_id, -1, user_id="asha", text="send 500 to ravi",
                           predicted_intent=r.intent, correct_intent="FAQ")
    a.close()
    result = CliRunner().invoke(root, ["report", "--json"])
    assert result.exit_code == 0, result.output
    rep = json.loads(result.output.strip().splitlines()[-1])
    assert rep["turns"] == 3 and rep["verification"]["ok"]
    assert rep["rates"]["abandonment_per_session"] == 1.0  # left at the confirmation
    assert rep["feedback"]["high_risk_false_positives"] == 1
    assert "understand" in rep["latency_ms"]


def test_turns_link_to_the_intent_model_and_its_training_data(fresh_home):
    from app.bank.seed import seed
    from app.conversation.wiring import build_assistant
    from app.core.settings import get_settings
    from app.core.types import MessageEnvelope
    from models.intents import get_classifier
    from provenance.tracker import Tracker
    from provenance.verify import verify_log

    settings = get_settings()
    seed(settings.db_url)
    a = build_assistant(settings, classifier=get_classifier(settings), tracker=Tracker(settings, redactor=redact))
    for text in ["hello", "what is my balance"]:
        a.handle(MessageEnvelope(user_id="asha", session_id="lin", text=text))
    a.close()
    records = [r.record for r in verify_log(settings.provenance_dir, settings=settings).records]
    models = [r for r in records if r["type"] == "model"]
    datasets = [r for r in records if r["type"] == "dataset"]
    turns = [r for r in records if r["type"] == "turn"]
    assert len(models) == 1 and models[0]["name"] == "intents"  # recorded once per log
    assert {d["sha256"] for d in datasets} == set(models[0]["dataset_hashes"]) and len(datasets) >= 11
    key = f"intents@{models[0]['version']}"
    assert all(t["model_versions"]["intent"] == key for t in turns)
