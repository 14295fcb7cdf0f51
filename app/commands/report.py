"""`sahayak report`: monitoring from the verified provenance log and feedback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from app.conversation.monitoring import build_report, collect, render_pngs
from app.core.settings import get_settings
from privacy.redact import redact
from provenance.tracker import Tracker
from provenance.verify import verify_log


def register(root: typer.Typer) -> None:
    root.command("report")(report)


def report(
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for report.json and the PNG pictures "
                                                            "(default $SAHAYAK_HOME/reports)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object."),
    record_incidents: bool = typer.Option(False, "--record-incidents",
                                          help="Write a signed incident record for each drift flag not yet recorded."),
) -> None:
    """Intent accuracy vs feedback, confusion matrix, clarification/hand-off/abandonment rates,
    handler success, latency per stage and high-risk false positives."""
    settings = get_settings()
    turns, feedback, verification = collect(settings)
    rep = build_report(turns, feedback)
    rep["verification"] = verification
    if record_incidents:
        rep["incidents_recorded"] = _record_drift_incidents(settings, rep["over_time"])
    out = out or settings.home / "reports"
    out.mkdir(parents=True, exist_ok=True)
    rep["pictures"] = [str(p) for p in render_pngs(rep, out)]
    (out / "report.json").write_text(json.dumps(rep, indent=2, default=str))
    if as_json:
        typer.echo(json.dumps(rep, default=str))
        return
    _print_report(rep, verification, out)


def _print_report(rep: dict[str, Any], verification: dict[str, Any], out: Path) -> None:
    """The report as rich tables on the terminal."""
    console = Console()
    console.print(f"[bold]Sahayak monitoring[/] — {rep['turns']} turns in {rep['sessions']} sessions "
                  f"(log verified: {'✓' if verification.get('ok') else '✗'})")
    rates = Table("rate", "value", title="Conversation rates")
    for k, v in rep["rates"].items():
        rates.add_row(k, "—" if v is None else str(v))
    rates.add_row("intent accuracy (feedback)", str(rep["feedback"]["intent_accuracy"]))
    rates.add_row("high-risk false positives", str(rep["feedback"]["high_risk_false_positives"]))
    console.print(rates)
    handlers = Table("handler", "turns", "success rate", title="Handlers")
    for h, v in rep["handlers"].items():
        handlers.add_row(h, str(v["turns"]), f"{v['success_rate']:.0%}")
    console.print(handlers)
    lat = Table("stage", "p50 ms", "p95 ms", title="Latency")
    for s, v in rep["latency_ms"].items():
        lat.add_row(s, str(v["p50"]), str(v["p95"]))
    console.print(lat)
    console.print(f"Pictures and report.json in {out}")


def _record_drift_incidents(settings: Any, over_time: dict[str, Any]) -> list[str]:
    """One signed ``incident`` event per (day, signal) drift flag the log does not hold yet; their ids."""
    done = set()
    if Path(settings.provenance_dir).exists():
        v = verify_log(settings.provenance_dir, settings=settings)
        done = {(r.record.get("day"), r.record.get("signal")) for r in v.records
                if r.record.get("kind") == "incident" and r.record.get("source") == "drift"}
    days = {d["day"]: d for d in over_time.get("days", [])}
    metric_of = {"intent_mix": "intent_js_distance", "confidence": "confidence_psi"}
    tracker = Tracker(settings, redactor=redact)
    ids = []
    try:
        for flag in over_time.get("flags", []):
            if (flag["day"], flag["signal"]) in done:
                continue
            metric = metric_of[flag["signal"]]
            ids.append(tracker.record_event("incident", source="drift", day=flag["day"], signal=flag["signal"],
                                            value=days[flag["day"]].get(metric),
                                            threshold=over_time["thresholds"][metric],
                                            reference_days=over_time["reference_days"]))
        tracker.flush(timeout=60)
    finally:
        tracker.close(timeout=30)
    return ids
