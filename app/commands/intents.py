"""`sahayak intents train|eval|export-feedback` and the top-level `sahayak classify`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from app.bank.db import Database
from app.commands.training_record import record_run
from app.conversation.support import SupportStore
from app.core.errors import SahayakError
from app.core.fingerprint import file_sha256
from app.core.paths import DATA_DIR
from app.core.settings import get_settings
from models.intents import evaluate, get_classifier, load_dataset, load_model, train_model
from models.intents.feedback import export_feedback_yaml
from models.intents.train import PRESETS, confusion_png
from privacy.redact import redact
from provenance.records import INTENT_CORRECTION
from provenance.tracker import Tracker
from provenance.training import intent_run
from provenance.verify import verify_log

intents_app = typer.Typer(help="Train, evaluate and improve the intent classifier.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(intents_app, name="intents")
    root.command("classify")(classify)


@intents_app.command("train")
def train(
    data: Path = typer.Option(DATA_DIR / "intents", "--data", help="YAML intent folder or a CSV with text + label columns."),
    out: Path = typer.Option(..., "--out", help="Model directory to write."),
    approach: str = typer.Option("frozen", "--approach", help="frozen | finetune | finetune-mpnet | ensemble | ensemble-mpnet | zeroshot | llm"),
    label_column: str = typer.Option("label", "--label-column", help="Label column of a CSV."),
    text_column: str = typer.Option("text", "--text-column", help="Text column of a CSV."),
    fast: bool = typer.Option(False, "--fast", help="Fast configuration (tests, smoke runs)."),
    seed: int = typer.Option(13, "--seed"),
    max_minutes: Optional[float] = typer.Option(
        None, "--max-minutes", min=0,
        help="Opt-in fine-tuning wall-clock budget in minutes (finetune, finetune-mpnet, ensemble, ensemble-mpnet; "
             "default none: the recipe's epochs run, so a busy machine trains the same model, only slower). With a "
             "budget a slow CPU trains fewer epochs than planned; metrics.json and lineage record what ran."),
) -> None:
    """Train an intent model into OUT (weights, config, metrics, lineage.json, model_card.md)."""
    params = None
    if max_minutes is not None:
        if PRESETS.get(approach, (approach,))[0] not in ("finetune", "ensemble"):
            raise typer.BadParameter("only fine-tuning approaches (finetune, finetune-mpnet, ensemble, ensemble-mpnet) have a time budget",
                                     param_hint="--max-minutes")
        params = {"max_minutes": max_minutes}
    ds = load_dataset(data, label_column=label_column, text_column=text_column)
    typer.echo(f"training {approach} on {len(ds)} examples, {len(ds.label_set)} labels …", err=True)
    model_dir = train_model(approach, ds, out, fast=fast, seed=seed, params=params)
    metrics = json.loads((model_dir / "metrics.json").read_text())
    summary = {k: metrics.get(k) for k in ("val_accuracy", "val_macro_f1", "val_oos_recall", "temperature",
                                           "ece_before", "ece_after", "oos_threshold", "training_seconds")}
    # A budget-cut run is a different (usually weaker) model than the recipe: never say nothing.
    for m_path in [model_dir / "metrics.json", *sorted(model_dir.glob("members/*/metrics.json"))]:
        m = json.loads(m_path.read_text())
        if m.get("stopped_by_time_budget"):
            summary["epochs_done"] = m["epochs_done"]
            typer.echo(f"warning: the time budget stopped fine-tuning ({m_path.parent.name}) at {m['epochs_done']:g} "
                       f"of {m['epochs_planned']:g} planned epochs on this machine; --max-minutes 0 trains them all",
                       err=True)
    # The run's own provenance, now: datasets, the training activity (its real times), agent, model.
    summary["provenance"] = record_run(intent_run(model_dir), command=f"sahayak intents train --approach {approach}")
    typer.echo(json.dumps({"model_dir": str(model_dir), **summary}))


@intents_app.command("eval")
def eval_cmd(
    model: Path = typer.Option(..., "--model", help="Trained model directory."),
    data: Path = typer.Option(DATA_DIR / "intents_eval", "--data", help="CSV or YAML folder to evaluate on."),
    label_column: str = typer.Option("label", "--label-column"),
    text_column: str = typer.Option("text", "--text-column"),
    png: Optional[Path] = typer.Option(None, "--png", help="Confusion matrix image (default: <model>/confusion.png)."),
    as_json: bool = typer.Option(False, "--json", help="Print only the JSON report (one line)."),
) -> None:
    """Evaluate a model: accuracy, macro-F1, OOS recall, single-query latency, confusion matrix."""
    clf = load_model(model)
    ds = load_dataset(data, label_column=label_column, text_column=text_column)
    metrics, y_true, y_pred = evaluate_with_progress(clf, ds)
    png_path = confusion_png(y_true, y_pred, png or Path(model) / "confusion.png", title=f"{clf.model_version} on {Path(data).name}")
    metrics["confusion_png"] = str(png_path)
    metrics["data"] = str(data)
    try:  # keep the latest evaluation with the model (the model card points at it)
        (Path(model) / "eval.json").write_text(json.dumps(metrics, indent=2))
    except OSError:
        pass
    if not as_json:
        table = Table(title=f"{clf.model_version} on {data}")
        table.add_column("label")
        table.add_column("F1", justify="right")
        for lab, f1 in metrics["per_label_f1"].items():
            table.add_row(lab, f"{f1:.3f}")
        Console(stderr=True).print(table)
    typer.echo(json.dumps(metrics))


def evaluate_with_progress(clf, ds):  # noqa: ANN001, ANN201 - thin wrapper
    return evaluate(clf, ds, progress=True)


@intents_app.command("export-feedback")
def export_feedback(
    out: Path = typer.Option(..., "--out", help="YAML file to write."),
    include_unlabelled: bool = typer.Option(False, "--include-unlabelled",
                                            help="Also list thumbs-down turns without a correction (for review)."),
) -> None:
    """Export misclassified turns flagged by users/staff as YAML training data."""
    rows = [r.model_dump() for r in SupportStore(Database(get_settings().db_url)).list_feedback()]
    summary = export_feedback_yaml(rows, out, include_unlabelled=include_unlabelled)
    summary["provenance"] = _record_feedback_dataset(out, rows)
    typer.echo(json.dumps(summary))


def _record_feedback_dataset(out: Path, rows: list[dict]) -> dict:
    """Sign the exported file as a dataset derived from the staff corrections behind it.

    A retrain on the file then ``USED`` this dataset (same SHA-256), so the graph links
    correction → dataset → training → new model."""
    settings = get_settings()
    ids = {r.get("id") for r in rows if r.get("correct_intent")}
    try:
        v = verify_log(settings.provenance_dir, settings=settings)
        corrections = sorted(r.record_id for r in v.records
                             if r.record.get("kind") == INTENT_CORRECTION and r.record.get("feedback_id") in ids)
    except Exception:  # noqa: BLE001 - an empty or absent log: no corrections to point at
        corrections = []
    tracker = Tracker(settings, redactor=redact)
    try:
        sha = file_sha256(out)
        tracker.record_dataset(str(out.resolve()), "intent corrections exported from feedback", sha256=sha,
                               derived_from=corrections, feedback_rows=len(ids))
        tracker.flush(timeout=60)
        return {"dataset_sha256": sha, "derived_from": corrections}
    except Exception as exc:  # noqa: BLE001 - the file is written; say what was not recorded
        typer.echo(f"warning: the export was not recorded in the provenance log: {exc}", err=True)
        return {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        tracker.close(timeout=30)


def classify(
    text: Optional[str] = typer.Argument(None, help="Message to classify (omit with --jsonl)."),
    model: Optional[Path] = typer.Option(None, "--model", help="Trained model directory (default: the configured classifier)."),
    jsonl: bool = typer.Option(False, "--jsonl", help="Read one text per line from stdin; write one JSON object per line."),
) -> None:
    """Classify messages: intent, calibrated confidence and entities as JSON."""
    if model is not None:
        clf = load_model(model)
    else:
        clf = get_classifier()
    if jsonl:
        for line in sys.stdin:
            line = line.rstrip("\n")
            if not line.strip():
                continue
            c = clf.classify(line)
            sys.stdout.write(json.dumps({"text": line, "intent": c.intent, "confidence": round(c.confidence, 4),
                                         "entities": c.entities}, ensure_ascii=False, default=str) + "\n")
            sys.stdout.flush()
        return
    if text is None:
        raise SahayakError("give a message to classify, or --jsonl to read messages from stdin")
    c = clf.classify(text)
    typer.echo(json.dumps({"text": text, "intent": c.intent, "confidence": round(c.confidence, 4),
                           "entities": c.entities, "ranking": c.ranking, "model_version": c.model_version,
                           "latency_ms": c.latency_ms}, ensure_ascii=False, default=str))
