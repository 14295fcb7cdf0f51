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
    turns = [r for r in records if r["type"] == "turn"]
    # The chat does not invent a training: the model (trained elsewhere) is registered at first use,
    # labelled so, with no datasets and no training activity; its card's claims are kept apart.
    assert len(models) == 1 and models[0]["name"] == "intents" and models[0]["origin"] == "registered_at_first_use"
    assert models[0]["dataset_hashes"] == [] and len(models[0]["claimed"]["training_files"]) >= 11
    assert not [r for r in records if r["type"] in ("dataset", "training")]
    key = f"intents@{models[0]['version']}"
    assert all(t["model_versions"]["intent"] == key for t in turns)
    # Once the training is recorded in this log (as `sahayak intents train` does), a new chat process
    # registers nothing more and the turns link to the trained model.
    from provenance.training import intent_run, record_training_run

    t = Tracker(settings, redactor=redact)
    record_training_run(t, **intent_run(get_classifier(settings).model_dir), command="test")
    t.close()
    a = build_assistant(settings, classifier=get_classifier(settings), tracker=Tracker(settings, redactor=redact))
    a.handle(MessageEnvelope(user_id="asha", session_id="lin2", text="hello"))
    a.close()
    records = [r.record for r in verify_log(settings.provenance_dir, settings=settings).records]
    assert [m["origin"] for m in records if m["type"] == "model"] == ["registered_at_first_use", "training"]
    assert len([r for r in records if r["type"] == "dataset"]) >= 11


def test_report_shows_drift_per_day_on_a_real_log(fresh_home):
    """Three days of signed turns; on the third the intent mix and the confidence shift: flagged there only."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from app.core.settings import get_settings
    from provenance.tracker import Tracker
    from tests.provenance.conftest import turn_fields

    t = Tracker(get_settings(), redactor=redact)
    day = {1: [("Check_Balance", 0.93), ("Fund_Transfer", 0.91)] * 10,
           2: [("Check_Balance", 0.92), ("Fund_Transfer", 0.9), ("Check_Balance", 0.94)] * 6,
           3: [("FAQ", 0.42), ("Out_Of_Scope", 0.38), ("Check_Balance", 0.55)] * 7}
    n = 0
    for d, rows in day.items():
        for i, (intent, conf) in enumerate(rows):
            n += 1
            t.record_turn(**turn_fields(n, session=f"d{d}-{i % 4}", intent=intent, confidence=conf,
                                        outcome="clarify" if conf < 0.6 else "success",
                                        timestamp=f"2026-11-0{d}T10:{i:02d}:00+00:00"))
    t.close()
    root = Path(__file__).resolve().parents[1]
    res = subprocess.run([sys.executable, "-m", "app.cli", "report", "--json"], cwd=root, env=dict(os.environ),
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    ot = json.loads(res.stdout.strip().splitlines()[-1])["over_time"]
    days = {r["day"]: r for r in ot["days"]}
    assert ot["reference_days"] == ["2026-11-01"] and list(days) == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert days["2026-11-01"]["mean_confidence"] == 0.92 and days["2026-11-01"]["intents"] == {
        "Check_Balance": 10, "Fund_Transfer": 10}
    assert days["2026-11-02"]["drift"] == [] and days["2026-11-02"]["intent_js_distance"] < 0.2
    assert days["2026-11-03"]["drift"] == ["intent_mix", "confidence"]
    assert days["2026-11-03"]["clarification_rate"] == 1.0 and days["2026-11-03"]["confidence_psi"] > 1
    assert ot["flags"] == [{"day": "2026-11-03", "signal": "intent_mix"}, {"day": "2026-11-03", "signal": "confidence"}]
    # A flagged drift becomes a signed incident record, once.
    for expected in (2, 0):
        res = subprocess.run([sys.executable, "-m", "app.cli", "report", "--json", "--record-incidents"], cwd=root,
                             env=dict(os.environ), capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr
        assert len(json.loads(res.stdout.strip().splitlines()[-1])["incidents_recorded"]) == expected
    from provenance.verify import verify_log

    v = verify_log(get_settings().provenance_dir, settings=get_settings())
    incidents = [r.record for r in v.records if r.record.get("kind") == "incident"]
    assert v.ok and sorted((i["day"], i["signal"]) for i in incidents) == [("2026-11-03", "confidence"),
                                                                          ("2026-11-03", "intent_mix")]
    assert all(i["value"] > i["threshold"] for i in incidents)
