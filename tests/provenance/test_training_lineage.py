"""Training writes its own provenance when it runs; the graph and the PROV-O answer the seed's queries.

Real training commands in subprocesses (`sahayak scoring train`, `sahayak intents train`), the real
signed log, the real Bolt graph (embedded ArcadeDB), the real CLI for import, audit and export,
and rdflib over the exported Turtle.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from rdflib import Graph

from app.core.settings import get_settings, reset_settings
from privacy.redact import redact
from provenance.graph import Importer
from provenance.prov import SEED_SPARQL, run_sparql
from provenance.queries import SEED_CYPHER, Audit
from provenance.tracker import Tracker
from provenance.training import ORIGIN_FIRST_USE, recorded_models, register_model_at_first_use
from provenance.verify import verify_log
from tests.provenance.conftest import turn_fields

pytestmark = pytest.mark.graph
ROOT = Path(__file__).resolve().parents[2]
ROWS = {"balance": ["what is my balance", "show my balance", "how much money do I have", "balance please",
                    "check my account balance", "how much is in savings"],
        "transfer": ["send 500 to Ravi", "transfer 2000 to Asha", "pay Ravi 300", "send money to my mother",
                     "transfer funds to Neha", "move 1000 to Karan"],
        "greet": ["hello", "hi there", "good morning", "hey", "namaste", "hi"]}


def _cli(home: Path, *args: str, agent: str = "priya") -> subprocess.CompletedProcess:
    env = dict(os.environ, SAHAYAK_HOME=str(home), SAHAYAK_AGENT=agent, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)


def _records(folder: Path) -> list[dict]:
    v = verify_log(folder, settings=get_settings())
    assert v.ok, [f.__dict__ for f in v.failures]
    return [r.record for r in v.records]


def _train_all(home: Path, tmp: Path) -> dict:
    """Scoring once, the intent model twice on the same data (two versions): three real training runs."""
    data = tmp / "intents"  # a YAML folder: one dataset record per file
    data.mkdir()
    for label, texts in ROWS.items():
        (data / f"{label}.yaml").write_text(yaml.safe_dump({"intent": label, "description": f"{label} requests",
                                                            "examples": texts}))
    before = datetime.now(timezone.utc).replace(microsecond=0)
    out = {}
    r = _cli(home, "scoring", "train", "--n", "3000", "--out", str(home / "models" / "scoring"))
    assert r.returncode == 0, r.stderr
    out["scoring"] = json.loads(r.stdout.strip().splitlines()[-1])
    for run in ("13", "14"):
        if run == "14":  # the retrain adds a file (corrections): a new version that reuses the first three files
            (data / "thanks.yaml").write_text(yaml.safe_dump({"intent": "greet", "description": "more greetings",
                                                               "examples": ["thanks, hello", "hello again", "yo"]}))
        r = _cli(home, "intents", "train", "--data", str(data), "--fast", "--out", str(tmp / f"intents-{run}"),
                 agent="system:ci-nightly" if run == "14" else "priya")
        assert r.returncode == 0, r.stderr
        out[f"intents-{run}"] = json.loads(r.stdout.strip().splitlines()[-1])
    out["before"] = before
    out["data"] = data
    return out


def _chat_turns(tracker: Tracker, models: list[str], n: int = 4) -> None:
    for i in range(n):
        tracker.record_turn(**turn_fields(i, session="sess-L", model_versions={f"m{j}": m for j, m in enumerate(models)}))


@pytest.fixture()
def trained(graph, fresh_home: Path, tmp_path: Path):
    runs = _train_all(fresh_home, tmp_path)
    reset_settings()
    return get_settings(), runs


def test_training_commands_record_their_own_runs(trained) -> None:
    settings, runs = trained
    after = datetime.now(timezone.utc)
    recs = _records(settings.provenance_dir)
    trainings = [r for r in recs if r["type"] == "training"]
    models = {r["model_id"]: r for r in recs if r["type"] == "model"}
    assert len(trainings) == 3 and len(models) == 3  # one per run (the two intent versions differ)
    for t in trainings:
        start, end = datetime.fromisoformat(t["started_at"]), datetime.fromisoformat(t["ended_at"])
        written = datetime.fromisoformat(t["timestamp"])
        # Real times, taken by the trainer: no training is dated later than it ran.
        assert runs["before"] <= start <= end <= written <= after + timedelta(seconds=1)
        m = models[t["model_id"]]
        assert m["origin"] == "training" and m["training_id"] == t["training_id"] and m["trained_at"] == t["ended_at"]
        assert m["dataset_hashes"] == t["dataset_hashes"] and m["metrics"] and m["environment"]
        assert t["git_commit"] and t["git_commit"] == m["git_commit"] and m["git_dirty"] == t["git_commit"].endswith("-dirty")
    by_model = {t["model_id"]: t for t in trainings}
    sc = by_model["loan-scoring@1.1.0"]
    assert sc["agent"] == {"id": "engineer:priya", "name": "priya", "kind": "engineer"}
    assert sc["command"].startswith("sahayak scoring train --n 3000")
    art = json.loads(Path(runs["scoring"]["artifact"]).read_text())
    assert sc["git_commit"] == art["git_commit"] and sc["ended_at"] == iso(art["trained_at"])
    assert models["loan-scoring@1.1.0"]["metrics"]["test_auc"] == art["metrics"]["test_auc"]
    intent_keys = [k for k in by_model if k.startswith("intents@")]
    assert {by_model[k]["agent"]["kind"] for k in intent_keys} == {"engineer", "system"}
    datasets = [r for r in recs if r["type"] == "dataset"]
    assert all(d["path"] and len(d["sha256"]) == 64 and d["description"] for d in datasets)
    files = json.loads((runs["data"].parent / "intents-13" / "lineage.json").read_text())["training_files"]
    assert len(files) == 3 and set(files.values()) <= {d["sha256"] for d in datasets}
    assert recorded_models(settings.provenance_dir) == {k: "training" for k in models}


def iso(ts: str) -> str:
    return datetime.fromisoformat(ts).astimezone(timezone.utc).isoformat()


def test_first_use_registers_without_a_fake_training(trained) -> None:
    settings, _ = trained
    t = Tracker(settings, redactor=redact)
    try:
        # A model trained by this log's own command: nothing new is written.
        assert register_model_at_first_use(t, "loan-scoring", "1.1.0") == "loan-scoring@1.1.0"
        # A model trained elsewhere: one clearly labelled model record, no training, no datasets.
        key = register_model_at_first_use(t, "intents", "foreign-1", claimed={"git_commit": "abc123"})
        register_model_at_first_use(t, "intents", "foreign-1")  # once per log
        t.flush(timeout=30)
    finally:
        t.close()
    recs = _records(settings.provenance_dir)
    foreign = [r for r in recs if r["type"] == "model" and r.get("model_id") == key]
    assert len(foreign) == 1 and foreign[0]["origin"] == ORIGIN_FIRST_USE and foreign[0]["dataset_hashes"] == []
    assert foreign[0]["claimed"] == {"git_commit": "abc123"} and "first use" in foreign[0]["description"]
    assert len([r for r in recs if r["type"] == "training"]) == 3
    assert len([r for r in recs if r["type"] == "model" and r.get("model_id") == "loan-scoring@1.1.0"]) == 1


def _import(settings) -> None:
    imp = Importer(settings)
    try:
        imp.run_once()
    finally:
        imp.close()


def _nonnull(rows: list[dict]) -> bool:
    return bool(rows) and all(v is not None and v != [] for r in rows for v in r.values())


def test_seed_cypher_queries_answer_on_a_trained_log(trained) -> None:
    settings, runs = trained
    intents = sorted(r["provenance"]["model"] for k, r in runs.items() if k.startswith("intents-"))
    t = Tracker(settings, redactor=redact)
    try:
        _chat_turns(t, ["loan-scoring@1.1.0", intents[0]])
        t.flush(timeout=30)
    finally:
        t.close()
    _import(settings)
    with Audit(settings) as a:
        rows = {n: a.seed_query(n) for n in SEED_CYPHER}
    for n in ("3.1", "3.2", "3.3", "3.4", "3.5", "3.6", "3.7"):
        assert _nonnull(rows[n]), (n, rows[n])
    assert rows["3.8"] == []  # every model has its datasets
    assert {r["model"] for r in rows["3.3"]} == {"intents", "loan-scoring"}
    assert all(len(r["hash"]) == 64 for r in rows["3.1"])
    assert {r["name"] for r in rows["3.2"]} == {"intents", "loan-scoring"}
    assert all(r["commit"] for r in rows["3.2"])
    assert {r["inference"] for r in rows["3.4"]} == {f"turn-{i}" for i in range(4)}
    assert all("9876543210" not in r["input"] and r["output"] for r in rows["3.4"])
    assert {(r["model"], r["inference"]) for r in rows["3.5"]} >= {("loan-scoring", "turn-0"), ("intents", "turn-3")}
    assert sorted((r["model"], r["datasets"]) for r in rows["3.6"]) == [("intents", 3), ("intents", 4)]
    assert len(rows["3.7"]) == 3 and all(r["models"] == 2 and r["names"] == ["intents", "intents"] for r in rows["3.7"])
    # A model that only turned up at first use is what 3.8 reports.
    t = Tracker(settings, redactor=redact)
    try:
        key = register_model_at_first_use(t, "legacy-faq", "0.9")
        t.record_turn(**turn_fields(99, session="sess-L", model_versions={"faq": key}))
        t.flush(timeout=30)
    finally:
        t.close()
    _import(settings)
    with Audit(settings) as a:
        assert [r["model"] for r in a.seed_query("3.8")] == ["legacy-faq"]
        trainer = a.cypher("MATCH (m:Model)-[:ATTRIBUTED_TO]->(g:Agent) RETURN m.id AS model, g.name AS agent "
                           "ORDER BY model")
    assert {r["agent"] for r in trainer} == {"priya", "ci-nightly"}
    # The staff command: read-only Cypher, seed numbers accepted, writes refused.
    env_home = settings.home
    r = _cli(env_home, "audit", "cypher", "3.6", "--json")
    assert r.returncode == 0, r.stderr
    assert [row["model"] for row in json.loads(r.stdout)] == ["intents", "intents"]
    r = _cli(env_home, "audit", "cypher", "MATCH (n) DETACH DELETE n")
    assert r.returncode == 1 and "read-only" in r.stderr
    with Audit(settings) as a:
        assert a.seed_query("3.1")  # nothing was deleted


def test_prov_o_export_answers_the_seed_sparql(trained, tmp_path: Path) -> None:
    settings, runs = trained
    out = tmp_path / "prov.ttl"
    r = _cli(settings.home, "provenance", "export", "--format", "turtle", "-o", str(out))
    assert r.returncode == 0, r.stderr
    g = Graph().parse(out, format="turtle")
    ds = run_sparql(g, "dataset_of_model")
    assert {str(x["model"]).rsplit("/", 1)[-1] for x in ds} >= {"loan-scoring%401.1.0"}
    attributed = run_sparql(g, "models_attributed_to_agent")
    assert {x["name"] for x in attributed} == {"priya", "ci-nightly"} and len(attributed) == 3
    start = runs["before"] - timedelta(seconds=1)
    window = run_sparql(g, "datasets_used_in_window", start=start, end=datetime.now(timezone.utc))
    assert len({x["dataset"] for x in window}) == 5  # four YAML files and the synthetic loan data
    assert run_sparql(g, "datasets_used_in_window", start=start - timedelta(days=2), end=start - timedelta(days=1)) == []
    chain = run_sparql(g, "dataset_activity_model_metrics")
    metric_names = {x["metric"] for x in chain}
    assert {"test_auc", "val_accuracy"} <= metric_names
    assert all(x["started"] <= x["ended"] for x in chain)
    reused = run_sparql(g, "reused_datasets")
    assert len(reused) == 3 and all(x["runs"] == 2 and x["path"].endswith(".yaml") for x in reused)
    # The seed's shapes need only the ex: prefix (prov:, foaf: are rdflib's defaults).
    assert all("PREFIX" not in q for q in SEED_SPARQL.values())
