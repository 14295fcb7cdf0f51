"""CLI train/eval/classify on a tiny CSV, lineage, and the feedback export round-trip."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pytest

ROWS = {
    "balance": ["what is my balance", "show my balance", "how much money do I have", "balance please",
                "check my account balance", "how much is in savings"],
    "transfer": ["send 500 to Ravi", "transfer 2000 to Asha", "pay Ravi 300", "send money to my mother",
                 "transfer funds to Neha", "move 1000 to Karan"],
    "greet": ["hello", "hi there", "good morning", "hey", "namaste", "hi"],
}


@pytest.fixture(scope="module")
def tiny_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tiny") / "tiny.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "intent"])
        for label, texts in ROWS.items():
            for t in texts:
                w.writerow([t, label])
    return path


@pytest.fixture(scope="module")
def tiny_model(tiny_csv, tmp_path_factory) -> Path:
    from models.intents import load_dataset, train_model

    out = tmp_path_factory.mktemp("models") / "tiny-frozen"
    return train_model("frozen", load_dataset(tiny_csv, label_column="intent"), out, fast=True)


@pytest.mark.slow
def test_cli_train_eval_classify(cli, tiny_csv, tmp_path):
    out = tmp_path / "m"
    res = cli("intents", "train", "--data", str(tiny_csv), "--label-column", "intent", "--fast", "--out", str(out))
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["model_dir"] == str(out) and summary["temperature"] > 0
    for name in ("config.json", "head.npz", "metrics.json", "lineage.json", "model_card.md"):
        assert (out / name).is_file(), name

    res = cli("intents", "eval", "--model", str(out), "--data", str(tiny_csv), "--label-column", "intent", "--json")
    report = json.loads(res.stdout.strip().splitlines()[-1])
    for key in ("accuracy", "macro_f1", "n", "latency_ms_p50", "latency_ms_p95"):
        assert key in report
    assert report["n"] == 18 and report["accuracy"] >= 0.9
    assert Path(report["confusion_png"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    res = cli("classify", "--model", str(out), "--jsonl", input="send Rs 2,500 to Ravi\n\nhello there\n")
    lines = [json.loads(line) for line in res.stdout.strip().splitlines()]
    assert [line["intent"] for line in lines] == ["transfer", "greet"]
    assert lines[0]["text"] == "send Rs 2,500 to Ravi"
    assert lines[0]["entities"]["amount"] == {"value": 2500.0, "currency": "INR"}  # from app.text.entities
    assert all(0 <= line["confidence"] <= 1 and isinstance(line["entities"], dict) for line in lines)


@pytest.mark.slow
def test_lineage_records_hashes_and_provenance_record(tiny_model, tiny_csv):
    from models.intents import training_record

    lineage = json.loads((tiny_model / "lineage.json").read_text())
    digest = hashlib.sha256(tiny_csv.read_bytes()).hexdigest()
    assert list(lineage["training_files"].values()) == [digest]
    assert lineage["approach"] == "frozen" and lineage["hyperparameters"]["C"] > 0
    assert lineage["libraries"]["torch"].startswith("2.13.0")
    assert lineage["n_examples"] == 18 and lineage["training_seconds"] >= 0
    rec = training_record(tiny_model)
    assert rec["lineage"] == lineage and rec["config"]["labels"] == ["balance", "greet", "transfer"]
    assert rec["metrics"]["ece_after"] >= 0 and len(rec["model_card_sha256"]) == 64
    assert "Intended use" in (tiny_model / "model_card.md").read_text()


FEEDBACK = [
    {"text": "paisa bhejo Ravi ko 200", "predicted_intent": "Out_Of_Scope", "correct_intent": "Fund_Transfer", "rating": -1},
    {"text": "paisa bhejo Ravi ko 200", "predicted_intent": "Out_Of_Scope", "correct_intent": "Fund_Transfer", "rating": -1},
    {"text": "what's my bal", "predicted_intent": "Check_Balance", "correct_intent": "Check_Balance", "rating": 1},
    {"text": "kahan hai ATM", "predicted_intent": "FAQ", "correct_intent": "Branch_Location", "rating": -1},
    {"text": "this was wrong", "predicted_intent": "FAQ", "correct_intent": None, "rating": -1},
]


def test_export_feedback_round_trip(tmp_path):
    from models.intents import load_dataset
    from models.intents.feedback import export_feedback_yaml

    out = tmp_path / "feedback.yaml"
    summary = export_feedback_yaml(FEEDBACK, out, include_unlabelled=True)
    assert summary["per_intent"] == {"Branch_Location": 1, "Fund_Transfer": 1}
    ds = load_dataset(out)
    assert sorted(zip(ds.labels, ds.texts)) == [("Branch_Location", "kahan hai ATM"), ("Fund_Transfer", "paisa bhejo Ravi ko 200")]


def test_export_feedback_from_the_bank_database(tmp_path, cli, monkeypatch):
    """Rows written to the real (SQLite) feedback table come out as YAML training data."""
    from app.bank.db import init_db, session_scope
    from app.bank.models import Feedback
    from app.core.settings import reset_settings
    from models.intents import load_dataset

    monkeypatch.setenv("SAHAYAK_HOME", str(tmp_path))
    monkeypatch.setenv("SAHAYAK_DATABASE_URL", f"sqlite:///{tmp_path / 'bank.db'}")
    reset_settings()
    try:
        init_db()
        with session_scope(write=True) as s:
            for i, r in enumerate(FEEDBACK):
                s.add(Feedback(session_id="s1", turn_id=f"t{i}", text=r["text"], rating=r["rating"],
                               predicted_intent=r["predicted_intent"], correct_intent=r["correct_intent"]))
        out = tmp_path / "fb.yaml"
        res = cli("intents", "export-feedback", "--out", str(out))
        assert json.loads(res.stdout.strip().splitlines()[-1])["examples"] == 2
        assert set(load_dataset(out).labels) == {"Fund_Transfer", "Branch_Location"}
    finally:
        monkeypatch.undo()
        reset_settings()


@pytest.mark.slow
def test_cli_train_says_when_the_time_budget_cut_fine_tuning(cli, tmp_path):
    """On a slow CPU the fine-tuning budget trains fewer epochs than planned: the model records it
    and the CLI warns, instead of quietly handing back a weaker model."""
    path = tmp_path / "more.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "intent"])
        for label, texts in ROWS.items():
            for i in range(5):  # 90 rows: several 32-row steps per epoch
                for t in texts:
                    w.writerow([f"{t} {'please' if i % 2 else ''} {i}".strip(), label])
    out = tmp_path / "ft"
    res = cli("intents", "train", "--data", str(path), "--label-column", "intent", "--approach", "finetune",
              "--fast", "--max-minutes", "0.00001", "--out", str(out))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["stopped_by_time_budget"] is True and metrics["epochs_done"] < metrics["epochs_planned"] == 1
    assert "time budget stopped fine-tuning" in res.stderr and "--max-minutes 0" in res.stderr
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["epochs_done"] == metrics["epochs_done"]
    lineage = json.loads((out / "lineage.json").read_text())
    assert lineage["hyperparameters"]["max_minutes"] == 0.00001


def test_cli_time_budget_is_refused_for_approaches_that_do_not_fine_tune(tmp_path, tiny_csv):
    import typer
    from typer.testing import CliRunner

    from app.commands import intents

    app = typer.Typer()
    intents.register(app)
    res = CliRunner().invoke(app, ["intents", "train", "--data", str(tiny_csv), "--label-column", "intent",
                                   "--approach", "frozen", "--max-minutes", "5", "--out", str(tmp_path / "m")])
    assert res.exit_code == 2 and "only fine-tuning approaches" in res.output
    assert not (tmp_path / "m").exists()


def test_fine_tuning_runs_its_epochs_without_a_budget_and_repeats_exactly(tmp_path, tiny_csv):
    """No budget unless asked: the recipe's epochs run, and the same data and seed give the same model."""
    import numpy as np

    from models.intents import load_dataset, train_model

    data = load_dataset(tiny_csv, label_column="intent")
    heads = []
    for run in ("a", "b"):
        out = train_model("finetune", data, tmp_path / run, fast=True, seed=5, params={"val_fraction": 0.3})
        metrics = json.loads((out / "metrics.json").read_text())
        lineage = json.loads((out / "lineage.json").read_text())
        assert metrics["stopped_by_time_budget"] is False and metrics["epochs_done"] == metrics["epochs_planned"] == 1
        hp = lineage["hyperparameters"]
        assert hp["max_minutes"] == 0.0 and hp["steps"] == hp["planned_steps"] and hp["stopped_early_by_time"] is False
        heads.append(dict(np.load(out / "head.npz")))
    assert heads[0].keys() == heads[1].keys()
    for name in heads[0]:
        np.testing.assert_array_equal(heads[0][name], heads[1][name])
