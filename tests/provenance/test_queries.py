"""Audit queries, session verification and lineage rendering against the real Bolt server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from provenance import dataset_hash
from provenance.graph import Importer
from provenance.queries import Audit, render_lineage, verify_session
from tests.provenance.conftest import turn_fields

pytestmark = pytest.mark.graph


@pytest.fixture()
def audit_graph(graph, make_tracker, tmp_path: Path):
    """A small but complete history: two datasets, three models (one without datasets), turns, a hand-off."""
    t = make_tracker(checkpoint_every=8)
    hashes = []
    for name in ("intents.yaml", "paraphrases.yaml"):
        p = tmp_path / name
        p.write_text(f"{name}: [a, b]\n")
        hashes.append(dataset_hash(p))
        t.record_dataset(p, f"{name} examples", sha256=hashes[-1])
    t.record_model("intents", "2", hyperparameters={"C": 2.0}, metrics={"f1": 0.94}, dataset_hashes=hashes)
    t.record_model("reranker", "1", hyperparameters={"lr": 1e-5}, metrics={"mrr": 0.8}, dataset_hashes=hashes[:1])
    t.record_model("scoring", "1", hyperparameters={}, metrics={})
    for i in range(12):
        t.record_turn(**turn_fields(i, session="sess-A" if i < 6 else "sess-B",
                                    confidence=0.3 if i in (2, 9) else 0.95,
                                    model_versions={"intent": "intents@2", "reranker": "reranker@1"}))
    t.record_event("handoff", session_id="sess-A", turn_id="turn-4", staff="meera", reason="disputed charge")
    t.flush(timeout=30)
    imp = Importer(graph)
    imp.run_once()
    imp.close()
    return graph, t


def test_seed_queries(audit_graph) -> None:
    settings, _ = audit_graph
    with Audit(settings) as a:
        assert {d["description"] for d in a.datasets()} == {"intents.yaml examples", "paraphrases.yaml examples"}
        models = {m["model"]: m for m in a.models()}
        assert models["intents@2"]["hyperparameters"] == {"C": 2.0} and models["intents@2"]["metrics"]["f1"] == 0.94
        dpm = {r["model"]: len(r["datasets"]) for r in a.datasets_per_model()}
        assert dpm["intents@2"] == 2 and dpm["reranker@1"] == 1 and dpm["scoring@1"] == 0
        inf = a.inferences(limit=5)
        assert len(inf) == 5 and inf[0]["turn_id"] == "turn-11" and "9876543210" not in inf[0]["input"]
        lin = a.lineage(limit=100)
        assert {(r["model"], r["turn_id"]) for r in lin} >= {("intents@2", "turn-0"), ("reranker@1", "turn-11")}
        assert [r["model"] for r in a.multi_dataset_models()] == ["intents@2"]
        assert [r["model"] for r in a.models_without_datasets()] == ["scoring@1"]


def test_staff_queries(audit_graph) -> None:
    settings, _ = audit_graph
    with Audit(settings) as a:
        tl = a.session_timeline("sess-A")  # raw id: pseudonymised the same way as the log
        assert [r["id"] for r in tl if r["kind"] == "turn"] == [f"turn-{i}" for i in range(6)]
        assert [r["event"] for r in tl if r["kind"] == "event"] == ["handoff"]
        why = a.why("turn-3")
        assert why["turn"]["intent"] == "Transfer_Money"
        assert why["passages"][0]["chunk_id"] == "fees#0" and why["passages"][0]["doc_id"] == "fees"
        assert {m["model"]: len(m["datasets"]) for m in why["models"]} == {"intents@2": 2, "reranker@1": 1}
        ho = a.handoffs()
        assert len(ho) == 1 and ho[0]["staff"] == "meera" and ho[0]["turn_id"] == "turn-4"
        assert {r["turn_id"] for r in a.low_confidence(0.5)} == {"turn-2", "turn-9"}


def test_verify_session_and_render(audit_graph, tmp_path: Path) -> None:
    settings, t = audit_graph
    res = verify_session("sess-B", settings)
    assert res["ok"] and len(res["records"]) == 6
    assert all(r["signature_ok"] and r["chain_ok"] and r["included"] for r in res["records"])
    with Audit(settings) as a:
        png = render_lineage(a, "turn-7", tmp_path / "lineage.png")
        svg = render_lineage(a, "turn-7", tmp_path / "lineage.svg")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert b"<svg" in svg.read_bytes()[:500]
    # Tamper with one of the session's records: the check names it.
    seg = sorted(t.folder.glob("segment-*.jsonl"))[0]
    data = seg.read_bytes().replace(b"Transfer_Money", b"Transfer_Monex", 9)
    seg.write_bytes(data)
    res2 = verify_session("sess-B", settings)
    assert not res2["ok"] and not res2["log_ok"]


def test_audit_cli_json(audit_graph) -> None:
    settings, _ = audit_graph
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, SAHAYAK_HOME=str(settings.home), SAHAYAK_NEO4J_URI=settings.neo4j_uri)
    out = subprocess.run([sys.executable, "-m", "app.cli", "audit", "orphan-models", "--json"], cwd=root, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert [r["model"] for r in json.loads(out.stdout)] == ["scoring@1"]
