"""The `sahayak` entry point: one clear error line and a non-zero exit, never a traceback."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from tests.conftest import ROOT


def run(*args: str, home) -> subprocess.CompletedProcess:
    env = {**os.environ, "SAHAYAK_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)


def test_turn_json_and_errors(tmp_path):
    out = run("turn", "--user", "asha", "--session", "c1", "--json", "send 2500 to ravi", home=tmp_path)
    assert out.returncode == 0, out.stderr
    obj = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(obj) == {"intent", "confidence", "entities", "handler", "reply", "state", "task", "dialogue_act",
                        "language"}
    assert obj["task"] == "Fund_Transfer" and obj["dialogue_act"] == "request"
    assert obj["state"] == "awaiting_confirmation" and obj["entities"]["amount"] == {"value": 2500.0, "currency": "INR"}
    # The next process continues the same conversation.
    out = run("turn", "--user", "asha", "--session", "c1", "--json", "yes", home=tmp_path)
    obj = json.loads(out.stdout.strip().splitlines()[-1])
    # A "yes" continuing the transfer is the transfer's turn, with the act affirm.
    assert obj["state"] == "done" and obj["task"] == "Fund_Transfer" and obj["dialogue_act"] == "affirm"

    bad = run("turn", "--user", "nobody", "--session", "c2", "hi", home=tmp_path)
    assert bad.returncode == 1 and "unknown user" in bad.stderr and "Traceback" not in bad.stderr
    stolen = run("turn", "--user", "ravi", "--session", "c1", "hi", home=tmp_path)
    assert stolen.returncode == 1 and "another user" in stolen.stderr and "Traceback" not in stolen.stderr


def test_usage_error_exit_code(tmp_path):
    out = run("turn", "--user", "asha", home=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr


def test_turn_jsonl_converses_in_one_process(tmp_path):
    """A driver writes a line, reads the reply, reads the SMS outbox for the OTP, writes the next line."""
    env = {**os.environ, "SAHAYAK_HOME": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "turn", "--jsonl"], cwd=ROOT, env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def say(obj) -> dict:
        proc.stdin.write((obj if isinstance(obj, str) else json.dumps(obj)) + "\n")
        proc.stdin.flush()
        return json.loads(proc.stdout.readline())

    try:
        first = say({"user": "asha", "session": "j1", "text": "send 15000 to ravi"})
        assert first["state"] == "awaiting_confirmation" and first["task"] == "Fund_Transfer"
        assert say({"user": "asha", "session": "j1", "text": "haan"})["state"] == "awaiting_otp"
        sms = (tmp_path / "outbox" / "sms.log").read_text(encoding="utf-8")
        code = re.findall(r"\b(\d{6})\b", sms)[-1]
        done = say({"user": "asha", "session": "j1", "text": code})
        assert done["state"] == "done" and done["task"] == "Fund_Transfer" and done["dialogue_act"] == "otp"
        assert "otp" not in done["entities"]  # a code is never echoed back as an entity
        bad = say("not json")
        assert bad["line"] == 4 and "error" in bad
        assert say({"user": "asha", "session": "j1", "text": "what's my balance"})["task"] == "Check_Balance"
    finally:
        proc.stdin.close()
        proc.wait(timeout=120)
    assert proc.returncode == 0, proc.stderr.read()
