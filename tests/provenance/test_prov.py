"""PROV-O export (Turtle and JSON-LD) and the seed's SPARQL queries over it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rdflib import Graph
from rdflib.namespace import PROV

from app.core.errors import SahayakError
from provenance import dataset_hash
from provenance.prov import export_prov, run_sparql
from tests.provenance.conftest import turn_fields


@pytest.fixture()
def history(make_tracker, tmp_path: Path):
    t = make_tracker(checkpoint_every=10)
    hs = []
    for name in ("a.yaml", "b.yaml"):
        p = tmp_path / name
        p.write_text(name)
        hs.append(dataset_hash(p))
        t.record_dataset(p, f"dataset {name}", sha256=hs[-1])
    t.record_model("intents", "3", hyperparameters={"C": 0.5}, metrics={"f1": 0.9}, dataset_hashes=hs)
    t.record_model("legacy", "0", hyperparameters={"k": 1}, metrics={})
    for i in range(5):
        t.record_turn(**turn_fields(i, model_versions={"intent": "intents@3"}))
    t.record_event("handoff", session_id="sess-1", staff="meera", turn_id="turn-4")
    t.close()
    return t


def test_turtle_export_and_seed_sparql_queries(history) -> None:
    ttl = export_prov(history.folder, "turtle", settings=history.settings)
    g = Graph().parse(data=ttl, format="turtle")
    ds = run_sparql(g, "datasets")
    assert sorted(r["description"] for r in ds) == ["dataset a.yaml", "dataset b.yaml"]
    models = {r["name"]: json.loads(r["hyperparameters"]) for r in run_sparql(g, "models")}
    assert models == {"intents": {"C": 0.5}, "legacy": {"k": 1}}
    per = {str(r["model"]).rsplit("/", 1)[-1]: r["datasets"] for r in run_sparql(g, "datasets_per_model")}
    assert per["intents%403"] == 2 and per["legacy%400"] == 0
    inf = run_sparql(g, "inferences")
    assert [r["turn_id"] for r in inf] == [f"turn-{i}" for i in range(5)]
    assert all("9876543210" not in r["input"] for r in inf) and inf[0]["output"] == "Sent ₹2,500 to Ravi."
    lin = run_sparql(g, "lineage")
    assert len(lin) == 10  # 2 datasets x 5 turns through intents@3
    assert [str(r["model"]).endswith("intents%403") for r in run_sparql(g, "multi_dataset_models")] == [True]
    orphans = [str(r["model"]) for r in run_sparql(g, "models_without_datasets")]
    assert len(orphans) == 1 and orphans[0].endswith("legacy%400")


def test_prov_o_terms_and_json_ld(history) -> None:
    jl = export_prov(history.folder, "json-ld", settings=history.settings)
    doc = json.loads(jl)
    assert "@context" in doc
    g = Graph().parse(data=jl, format="json-ld")
    preds = set(g.predicates())
    for term in (PROV.used, PROV.wasGeneratedBy, PROV.wasAttributedTo, PROV.wasAssociatedWith,
                 PROV.startedAtTime, PROV.endedAtTime, PROV.wasDerivedFrom):
        assert term in preds, term
    assert set(g.subjects(predicate=None, object=PROV.Activity))
    assert set(g.subjects(predicate=None, object=PROV.SoftwareAgent))


def test_export_refuses_a_tampered_log(history) -> None:
    seg = sorted(history.folder.glob("segment-*.jsonl"))[0]
    seg.write_bytes(seg.read_bytes().replace(b"intents", b"intentz", 1))
    with pytest.raises(SahayakError, match="does not verify"):
        export_prov(history.folder, "turtle", settings=history.settings)
