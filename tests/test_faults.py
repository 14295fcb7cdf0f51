"""Faults caused for real: a full disk under the provenance log, and a writer killed mid-run.

(Graph outage and catch-up: tests/provenance/test_graph.py; scoring service down or slow:
tests/scoring/; database busy with retry and backoff: tests/bank/test_db_retry.py.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from decimal import Decimal
from pathlib import Path

import pytest

from app.bank.seed import seed
from app.bank.service import BankService
from app.conversation.wiring import build_assistant
from app.core.settings import get_settings
from app.core.types import MessageEnvelope
from models.intents import get_classifier
from privacy.redact import redact
from provenance.tracker import Tracker
from provenance.verify import verify_log
from tests.conftest import IN_CI, ROOT


@pytest.fixture()
def tiny_disk(fresh_home):
    """Mount a 256 KiB tmpfs at $SAHAYAK_HOME/provenance (needs root, as on CI)."""
    mount_point = Path(fresh_home) / "provenance"
    mount_point.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        if IN_CI:
            pytest.fail(f"cannot mount a tmpfs for the disk-full test: {proc.stderr.strip()}")
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _fill(folder: Path) -> Path:
    filler = folder / "filler.bin"
    with open(filler, "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError:
            pass
    return filler


def _wait(predicate, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_disk_full_refuses_money_movement_and_loses_no_record(tiny_disk):
    settings = get_settings()
    seed(settings.db_url)
    tracker = Tracker(settings, redactor=redact)
    a = build_assistant(settings, bank=BankService(settings.db_url), classifier=get_classifier(settings), tracker=tracker)

    def say(text: str):
        return a.handle(MessageEnvelope(user_id="asha", session_id="df", channel="test", text=text))

    assert say("hello").reply
    tracker.flush()
    filler = _fill(tiny_disk)
    # tmpfs hands out whole pages, so the last segment may still have a few KiB of slack: records
    # bigger than a page make sure the next write really meets the full disk.
    for _ in range(2):
        tracker.record_event("padding", padding="x" * 6000)
    assert say("send 500 to ravi").state == "awaiting_confirmation"
    assert _wait(lambda: not tracker.healthy()), "the tracker did not notice the full disk"
    refused = say("yes")
    assert refused.outcome == "refused" and "audit log is unavailable" in refused.reply
    assert BankService(settings.db_url).resolve_account(a.bank.get_customer("asha").id, "savings").balance \
        == Decimal("125000.00")

    filler.unlink()  # space again: the queued records are written, nothing was lost
    assert say("send 500 to ravi").state == "awaiting_confirmation"
    assert _wait(tracker.healthy), tracker.last_error
    done = say("yes")
    assert done.state == "done" and "Done" in done.reply
    a.close()
    report = verify_log(settings.provenance_dir, settings=settings)
    assert report.ok, report.report()["failures"]
    assert len([r for r in report.records if r.type == "turn"]) == 5  # every turn, outage included


WRITER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r})
    from app.core.settings import get_settings
    from privacy.redact import redact
    from provenance.tracker import Tracker
    t = Tracker(get_settings(), redactor=redact)
    i = 0
    while True:
        t.record_event("load", n=i, padding="x" * 2000)
        i += 1
        if i % 50 == 0:
            t.flush()
            print(i, flush=True)
""")


def test_writer_killed_mid_run_leaves_a_verifiable_log_that_continues(fresh_home):
    settings = get_settings()
    env = {**os.environ, "SAHAYAK_HOME": str(fresh_home), "SAHAYAK_CHECKPOINT_EVERY": "25"}
    proc = subprocess.Popen([sys.executable, "-c", WRITER.format(root=str(ROOT))], env=env, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip(), "the writer did not start"
        time.sleep(0.3)  # let it be somewhere inside a batch of writes
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    before = verify_log(settings.provenance_dir, settings=settings)
    # A crash may leave a torn last line: it must be reported at its line, never silently fixed.
    for f in before.failures:
        assert f.kind == "torn_tail", before.report()
    written = before.valid

    t = Tracker(settings, redactor=redact)  # the next start continues a valid chain after the last good record
    for n in range(10):
        t.record_event("after_crash", n=n)
    t.close()
    after = verify_log(settings.provenance_dir, settings=settings)
    assert after.ok, after.report()["failures"]
    assert after.valid >= written + 10
