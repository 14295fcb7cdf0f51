"""A log written in the seed's schema 1.1 is verified *and* imported (real CLI, real Bolt graph)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from provenance.queries import SEED_CYPHER, Audit
from provenance.verify import seal_seed

pytestmark = pytest.mark.graph
ROOT = Path(__file__).resolve().parents[2]
H1, H2 = "a" * 64, "b" * 64


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=dict(os.environ, SAHAYAK_HOME=str(home)),
                          capture_output=True, text=True, timeout=180)


def _seed_records() -> list[dict]:
    ts = "2024-03-0{}T10:00:00+00:00"
    return [
        {"type": "dataset", "path": "data/intents.csv", "hash": H1, "description": "intent examples",
         "timestamp": ts.format(1)},
        {"type": "dataset", "path": "data/paraphrases.csv", "hash": H2, "description": "paraphrases",
         "timestamp": ts.format(1)},
        {"type": "model", "name": "intent-clf", "version": "1", "commit": "0123abc", "hyperparameters": {"C": 1.0},
         "environment": {"python": "3.10"}, "datasets": [H1, H2], "timestamp": ts.format(2)},
        {"type": "inference", "id": "inf-1", "model": "intent-clf@1", "input": "call me on 9876543210",
         "output": "Check_Balance", "timestamp": ts.format(3)},
        {"type": "inference", "id": "inf-2", "model": "intent-clf@1", "input": "send 500 to Ravi",
         "output": "Fund_Transfer", "timestamp": ts.format(4)},
    ]


@pytest.fixture()
def seed_log(tmp_path: Path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "seed_pub.pem"
    pem.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    log = tmp_path / "seed.jsonl"
    log.write_text("\n".join(seal_seed(r, key) for r in _seed_records()) + "\n")
    return log, pem


def test_seed_1_1_log_is_verified_and_imported(graph, seed_log, tmp_path: Path) -> None:
    log, pem = seed_log
    home = graph.home
    r = _cli(home, "provenance", "verify", str(log), "--seed-pubkey", str(pem))
    assert r.returncode == 0, r.stdout + r.stderr
    r = _cli(home, "graph", "import", "--log", str(log), "--seed-pubkey", str(pem))
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary == {"log": str(log), "schema_version": "1.1", "imported": 5, "dataset": 2, "model": 1,
                       "inference": 2, "skipped": 0}
    with Audit(graph) as a:
        rows = {n: a.seed_query(n) for n in SEED_CYPHER}
        again = _cli(home, "graph", "import", "--log", str(log), "--seed-pubkey", str(pem))  # idempotent
        assert again.returncode == 0 and a.cypher("MATCH (i:Inference) RETURN count(i) AS n")[0]["n"] == 2
    assert {d["hash"] for d in rows["3.1"]} == {H1, H2}
    assert rows["3.2"] == [{"name": "intent-clf", "commit": "0123abc", "hyperparameters": {"C": 1.0},
                            "environment": {"python": "3.10"}, "timestamp": "2024-03-02T10:00:00+00:00"}]
    assert len(rows["3.3"]) == 1 and sorted(rows["3.3"][0]["datasets"]) == ["data/intents.csv", "data/paraphrases.csv"]
    inf = {r["inference"]: r for r in rows["3.4"]}
    assert set(inf) == {"inf-1", "inf-2"} and inf["inf-2"]["output"] == "Fund_Transfer"
    assert "9876543210" not in inf["inf-1"]["input"]  # redacted on the way in, like Sahayak's own turns
    assert len(rows["3.5"]) == 4 and rows["3.6"][0]["datasets"] == 2 and rows["3.8"] == []


def test_a_tampered_seed_line_stops_the_import_before_anything_is_written(graph, seed_log) -> None:
    log, pem = seed_log
    lines = log.read_text().splitlines()
    env = json.loads(lines[3])
    env["signed_data"] = env["signed_data"].replace("Check_Balance", "Close_Account")
    lines[3] = json.dumps(env)
    log.write_text("\n".join(lines) + "\n")
    r = _cli(graph.home, "graph", "import", "--log", str(log), "--seed-pubkey", str(pem))
    assert r.returncode == 1 and "seed.jsonl:4" in r.stderr and "does not verify" in r.stderr
    with Audit(graph) as a:
        assert a.cypher("MATCH (n) RETURN count(n) AS n")[0]["n"] == 0
    # Without the seed's key nothing is imported either.
    r = _cli(graph.home, "graph", "import", "--log", str(log))
    assert r.returncode == 1 and "public key" in r.stderr
