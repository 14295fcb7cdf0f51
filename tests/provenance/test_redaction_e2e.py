"""Issue 19, finding 2, end to end: a card number written with dots or with zero-width characters
between its digits goes through the real pipeline (seeded SQLite bank, real classifier, real
provenance log, real Bolt graph) and is masked everywhere it is stored: the session ChatML, the
provenance log, the graph, the hand-off ticket, the logs and every file under SAHAYAK_HOME."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from privacy.redact import redact

pytestmark = pytest.mark.graph

CARD = "4556737586899855"  # Luhn-valid
DOTTED = "4556.7375.8689.9855"
ZERO_WIDTH = "\u200b".join(CARD)  # renders as 4556737586899855
DEVANAGARI_MIXED = "४५५६\u2060७३७५-८६८९\u00a0९८५५"
MASKED = "XXXX XXXX XXXX 9855"
# Whatever the spelling, no stored form may hold the first twelve digits (the last four may show).
HIDDEN = ("\u200b", "\u2060", "\u00a0")


def _leaks(blob: str) -> list[str]:
    flat = blob
    for ch in HIDDEN:
        flat = flat.replace(ch, "")
    found = [n for n in (DOTTED, ZERO_WIDTH, CARD, CARD[:12], "4556 7375 8689", "४५५६") if n in blob or n in flat]
    if "455673758689" in "".join(c for c in flat if c.isdigit() or c in ".- "):
        found.append("digits with separators")
    return found


def _file_leaks(folder: Path) -> dict[str, list[str]]:
    out = {}
    for path in folder.rglob("*"):
        if path.is_file():
            text = path.read_bytes().decode("utf-8", errors="replace")
            leaks = _leaks(text)
            if leaks:
                out[str(path)] = leaks
    return out


def test_disguised_card_numbers_are_masked_everywhere(graph, bolt_server, fresh_home: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    from app.bank.seed import seed
    from app.bank.service import BankService
    from app.conversation.support import SupportStore
    from app.conversation.wiring import build_assistant
    from app.core.types import MessageEnvelope
    from models.intents import get_classifier
    from provenance.graph import Importer, driver
    from provenance.tracker import Tracker

    settings = graph
    caplog.set_level(logging.DEBUG)
    seed(settings.db_url)
    bank = BankService(settings.db_url)
    tracker = Tracker(settings, redactor=redact)
    assistant = build_assistant(settings=settings, bank=bank, classifier=get_classifier(settings), tracker=tracker)
    session = "sess-disguised-card"
    texts = [f"my card {DOTTED} was charged twice", f"card number {ZERO_WIDTH} please check",
             f"my card {DEVANAGARI_MIXED} is lost", "I want to speak to a human agent"]
    try:
        results = [assistant.handle(MessageEnvelope(user_id="asha", session_id=session, channel="test", text=t))
                   for t in texts]
        tracker.flush(timeout=60)
    finally:
        assistant.close()
    assert results[-1].intent == "Human_Handoff", [r.public() for r in results]
    for r in results:
        assert not _leaks(r.reply) and not _leaks(json.dumps(r.entities, ensure_ascii=False)), r.public()

    # Session ChatML in the bank database: masked, keeping the number's last four.
    chatml = assistant.sessions.load(session).chatml
    assert not _leaks(chatml), chatml
    assert chatml.count(MASKED) >= 3, chatml

    # Provenance log: the stored input is the redacted text as a person reads it.
    segments = sorted(Path(settings.provenance_dir).glob("segment-*.jsonl"))
    log_text = "".join(p.read_text(encoding="utf-8") for p in segments)
    assert not _leaks(log_text)
    inputs = [json.loads(json.loads(line)["signed_data"])["record"].get("input")
              for line in log_text.splitlines() if '"type":"turn"' in line.replace(" ", "")]
    assert sum(MASKED in (i or "") for i in inputs) == 3, inputs
    assert not any("\u200b" in (i or "") for i in inputs)

    # The hand-off ticket: reason and transcript.
    tickets = SupportStore(bank.db).list_handoffs(status=None)
    assert tickets and MASKED in tickets[-1].transcript
    assert not _leaks(tickets[-1].transcript + tickets[-1].reason)

    # The graph (imported from the log over Bolt): every property of every node.
    imp = Importer(settings)
    try:
        assert imp.run_once() > 0
    finally:
        imp.close()
    with driver(settings) as drv, drv.session(database=settings.neo4j_database) as s:
        nodes = [dict(r["n"]) for r in s.run("MATCH (n) RETURN n")]
    dump = json.dumps(nodes, ensure_ascii=False, default=str)
    assert MASKED in dump and not _leaks(dump)

    # Logs and every file under SAHAYAK_HOME (bank.db and its WAL, outbox, provenance, keys).
    assert not _leaks("\n".join(f"{r.getMessage()} {r.args}" for r in caplog.records))
    assert _file_leaks(fresh_home) == {}
