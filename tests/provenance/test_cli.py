"""The provenance CLI end to end in a subprocess: keygen, rotate, flush, prove, export."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, SAHAYAK_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_keygen_rotate_flush_prove_export(fresh_home: Path) -> None:
    r = _cli(fresh_home, "provenance", "keygen", "--alg", "rsa-pss")
    assert r.returncode == 0 and "rsa-pss" in r.stdout
    assert "BEGIN" not in r.stdout + r.stderr  # key material is never printed
    code = ("from provenance import get_tracker\n"
            "from privacy.redact import redact\n"
            "t = get_tracker(redactor=redact)\n"
            "for i in range(3): t.record_event('ping', n=i)\n"
            "t.record_turn(turn_id='cli-turn', session_id='s', user_id='asha', channel='cli', text='hi', chatml='', "
            "intent='Greet', confidence=0.99, entities={}, handler='greet', outcome='success', state='done', reply='Hello!')\n")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=dict(os.environ, SAHAYAK_HOME=str(fresh_home)),
                   check=True, timeout=60)
    r = _cli(fresh_home, "provenance", "rotate", "--alg", "ed25519")
    assert r.returncode == 0, r.stderr
    rot = json.loads(r.stdout)
    assert rot["alg"] == "ed25519" and rot["old_key_id"] != rot["new_key_id"]
    assert _cli(fresh_home, "provenance", "flush").returncode == 0
    keys = json.loads(_cli(fresh_home, "provenance", "keys").stdout)
    assert [k["alg"] for k in keys] == ["rsa-pss", "ed25519"] and keys[1]["active"]
    r = _cli(fresh_home, "provenance", "verify", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["keys_used"] == sorted([rot["old_key_id"], rot["new_key_id"]])
    r = _cli(fresh_home, "provenance", "prove", "cli-turn")
    assert r.returncode == 0 and json.loads(r.stdout)["verified"] is True
    r = _cli(fresh_home, "provenance", "export", "--format", "json-ld")
    assert r.returncode == 0 and "prov" in json.loads(r.stdout)["@context"]
    r = _cli(fresh_home, "provenance", "prove", "no-such-record")
    assert r.returncode == 1 and "error:" in r.stderr
