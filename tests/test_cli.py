"""The `sahayak` entry point: one clear error line and a non-zero exit, never a traceback."""

from __future__ import annotations

import json
import os
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
    assert set(obj) == {"intent", "confidence", "entities", "handler", "reply", "state"}
    assert obj["state"] == "awaiting_confirmation" and obj["entities"]["amount"] == {"value": 2500.0, "currency": "INR"}
    # The next process continues the same conversation.
    out = run("turn", "--user", "asha", "--session", "c1", "--json", "yes", home=tmp_path)
    assert json.loads(out.stdout.strip().splitlines()[-1])["state"] == "done"

    bad = run("turn", "--user", "nobody", "--session", "c2", "hi", home=tmp_path)
    assert bad.returncode == 1 and "unknown user" in bad.stderr and "Traceback" not in bad.stderr
    stolen = run("turn", "--user", "ravi", "--session", "c1", "hi", home=tmp_path)
    assert stolen.returncode == 1 and "another user" in stolen.stderr and "Traceback" not in stolen.stderr


def test_usage_error_exit_code(tmp_path):
    out = run("turn", "--user", "asha", home=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
