"""Monitoring computed from the audited record itself.

The numbers come from *verified* provenance turn records (so monitoring can't be fed
records the audit trail doesn't have) plus the customers'/staff's feedback in the bank
database. ``build_report`` returns plain data; ``render_pngs`` draws the pictures.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from app.bank.db import Database
from app.conversation.support import SupportStore
from provenance.verify import verify_log

HIGH_RISK_INTENTS = {"Fund_Transfer", "Card_Block"}
STAGES = ("preprocess", "understand", "dialogue", "save", "total")


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 2)


# Drift thresholds (per day against the reference window): Jensen–Shannon distance of the intent
# mix (base 2, 0 = same mix, 1 = disjoint) and the population stability index of the confidence.
JS_DRIFT = 0.2
PSI_DRIFT = 0.25  # the usual rule of thumb: < 0.1 stable, 0.1–0.25 moderate, > 0.25 significant
CONFIDENCE_BINS = np.linspace(0.0, 1.0, 11)


def js_distance(p: dict[str, int], q: dict[str, int]) -> float:
    """Jensen–Shannon distance (base 2) between two count distributions over labels."""
    keys = sorted(set(p) | set(q))
    a = np.array([p.get(k, 0) for k in keys], dtype=float)
    b = np.array([q.get(k, 0) for k in keys], dtype=float)
    if a.sum() == 0 or b.sum() == 0:
        return 0.0
    a, b = a / a.sum(), b / b.sum()
    m = (a + b) / 2

    def kl(x: np.ndarray) -> float:
        nz = x > 0
        return float(np.sum(x[nz] * np.log2(x[nz] / m[nz])))

    return round(float(np.sqrt(max(0.0, (kl(a) + kl(b)) / 2))), 4)


def psi(reference: list[float], current: list[float], eps: float = 1e-4) -> float:
    """Population stability index of ``current`` against ``reference`` over ten confidence bins."""
    if not reference or not current:
        return 0.0
    r = np.histogram(np.clip(reference, 0, 1), CONFIDENCE_BINS)[0] / len(reference)
    c = np.histogram(np.clip(current, 0, 1), CONFIDENCE_BINS)[0] / len(current)
    r, c = np.maximum(r, eps), np.maximum(c, eps)
    return round(float(np.sum((c - r) * np.log(c / r))), 4)


def over_time(turns: list[dict[str, Any]], reference_days: int = 1) -> dict[str, Any]:
    """Per UTC day: intent mix, mean confidence, clarification and hand-off rates, and drift
    against the reference window (the first ``reference_days`` days with turns), flagged above
    :data:`JS_DRIFT` / :data:`PSI_DRIFT` (NIST AI RMF Measure 2.4 / Manage 4.1: monitored over time)."""
    by_day: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for t in turns:
        by_day[str(t.get("timestamp") or "")[:10] or "unknown"].append(t)
    days = sorted(by_day)
    ref_days = days[:max(1, reference_days)]
    ref = [t for d in ref_days for t in by_day[d]]
    ref_mix = Counter(t.get("intent") for t in ref)
    ref_conf = [float(t.get("confidence") or 0.0) for t in ref]
    rows, flags = [], []
    for d in days:
        ts = by_day[d]
        conf = [float(t.get("confidence") or 0.0) for t in ts]
        mix = Counter(t.get("intent") for t in ts)
        row = {"day": d, "turns": len(ts), "intents": dict(mix.most_common()),
               "mean_confidence": round(float(np.mean(conf)), 4) if conf else None,
               "clarification_rate": round(sum(t.get("outcome") == "clarify" for t in ts) / len(ts), 4),
               "handoff_rate": round(sum(t.get("outcome") == "handoff" for t in ts) / len(ts), 4),
               "reference": d in ref_days}
        if d not in ref_days:
            row["intent_js_distance"] = js_distance(mix, ref_mix)
            row["confidence_psi"] = psi(ref_conf, conf)
            row["drift"] = [name for name, value, limit in (("intent_mix", row["intent_js_distance"], JS_DRIFT),
                                                            ("confidence", row["confidence_psi"], PSI_DRIFT))
                            if value > limit]
            flags += [{"day": d, "signal": name} for name in row["drift"]]
        rows.append(row)
    return {"reference_days": ref_days, "thresholds": {"intent_js_distance": JS_DRIFT, "confidence_psi": PSI_DRIFT},
            "days": rows, "flags": flags}


def build_report(turns: Iterable[dict[str, Any]], feedback: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Aggregate turn records (provenance ``turn`` records) and feedback rows into one report."""
    turns = sorted(turns, key=lambda r: r.get("timestamp", ""))
    feedback = list(feedback)
    n = len(turns)
    sessions: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for t in turns:
        sessions[t.get("session") or "?"].append(t)

    # Rates per turn and per session.
    clarify = sum(1 for t in turns if t.get("outcome") == "clarify")
    handoff_sessions = sum(1 for ts in sessions.values() if any(t.get("outcome") == "handoff" for t in ts))
    abandoned = sum(1 for ts in sessions.values() if str(ts[-1].get("state", "done")).startswith("awaiting"))

    # Handler outcomes.
    per_handler: dict[str, Counter] = defaultdict(Counter)
    for t in turns:
        if t.get("handler") and str(t.get("state")) == "done":
            per_handler[t["handler"]][t.get("outcome", "success")] += 1
    handlers = {
        h: {"turns": sum(c.values()), **dict(c), "success_rate": round(c.get("success", 0) / sum(c.values()), 4)}
        for h, c in sorted(per_handler.items())
    }

    # Latency per stage.
    stage_values: dict[str, list[float]] = defaultdict(list)
    for t in turns:
        for stage, ms in (t.get("stage_ms") or {}).items():
            stage_values[stage].append(float(ms))
        if "total" not in (t.get("stage_ms") or {}) and t.get("latency_ms") is not None:
            stage_values["total"].append(float(t["latency_ms"]))
    latency = {s: {"p50": _pct(v, 0.5), "p95": _pct(v, 0.95), "n": len(v)} for s, v in stage_values.items()}

    # Intent accuracy against feedback: a thumbs-up confirms the prediction, a correction replaces it.
    labelled = []
    for f in feedback:
        predicted = f.get("predicted_intent")
        if not predicted:
            continue
        if f.get("correct_intent"):
            labelled.append((predicted, f["correct_intent"]))
        elif (f.get("rating") or 0) > 0:
            labelled.append((predicted, predicted))
    correct = sum(1 for p, c in labelled if p == c)
    labels = sorted({x for pair in labelled for x in pair})
    matrix = [[sum(1 for p, c in labelled if c == row and p == col) for col in labels] for row in labels]
    high_risk_fp = sum(1 for p, c in labelled if p in HIGH_RISK_INTENTS and c != p)
    high_risk_cancelled = sum(
        1 for t in turns if t.get("handler") in HIGH_RISK_INTENTS and t.get("outcome") == "refused"
        and "cancelled" in str(t.get("reply", "")))

    return {
        "turns": n,
        "sessions": len(sessions),
        "intents": dict(Counter(t.get("intent") for t in turns).most_common()),
        "rates": {
            "clarification": round(clarify / n, 4) if n else None,
            "handoff_per_session": round(handoff_sessions / len(sessions), 4) if sessions else None,
            "abandonment_per_session": round(abandoned / len(sessions), 4) if sessions else None,
            "low_confidence_turns": sum(1 for t in turns if float(t.get("confidence", 1)) < 0.6),
        },
        "handlers": handlers,
        "latency_ms": latency,
        "feedback": {
            "labelled": len(labelled),
            "intent_accuracy": round(correct / len(labelled), 4) if labelled else None,
            "confusion": {"labels": labels, "matrix": matrix},
            "high_risk_false_positives": high_risk_fp,
        },
        "high_risk_cancelled_at_confirmation": high_risk_cancelled,
        "over_time": over_time(turns),
    }


def render_pngs(report: dict[str, Any], out_dir: Path) -> list[Path]:
    """Draw the confusion matrix, handler outcomes and stage latencies as PNG files."""
    import matplotlib  # heavy: loaded only when pictures are drawn, not by `sahayak report --json`

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # heavy: as above, only when pictures are drawn

    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    conf = report["feedback"]["confusion"]
    if conf["labels"]:
        fig, ax = plt.subplots(figsize=(1 + 0.6 * len(conf["labels"]), 1 + 0.6 * len(conf["labels"])))
        ax.imshow(conf["matrix"], cmap="Blues")
        ax.set_xticks(range(len(conf["labels"])), conf["labels"], rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(len(conf["labels"])), conf["labels"], fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("correct (feedback)")
        for i, row in enumerate(conf["matrix"]):
            for j, v in enumerate(row):
                if v:
                    ax.text(j, i, str(v), ha="center", va="center", fontsize=8)
        ax.set_title("Intent confusion from feedback")
        fig.tight_layout()
        written.append(out_dir / "confusion.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)

    if report["handlers"]:
        names = list(report["handlers"])
        outcomes = sorted({k for h in report["handlers"].values() for k in h
                           if k not in {"turns", "success_rate"}})
        fig, ax = plt.subplots(figsize=(8, 0.5 + 0.45 * len(names)))
        left = [0] * len(names)
        for outcome in outcomes:
            vals = [report["handlers"][n].get(outcome, 0) for n in names]
            ax.barh(names, vals, left=left, label=outcome)
            left = [a + b for a, b in zip(left, vals)]
        ax.set_xlabel("completed turns")
        ax.legend(fontsize=8)
        ax.set_title("Handler outcomes")
        fig.tight_layout()
        written.append(out_dir / "handlers.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)

    lat = {k: v for k, v in report["latency_ms"].items() if v["p50"] is not None}
    if lat:
        stages = [s for s in STAGES if s in lat] + [s for s in lat if s not in STAGES]
        fig, ax = plt.subplots(figsize=(7, 3.5))
        xs = range(len(stages))
        ax.bar([x - 0.2 for x in xs], [lat[s]["p50"] for s in stages], width=0.4, label="p50")
        ax.bar([x + 0.2 for x in xs], [lat[s]["p95"] for s in stages], width=0.4, label="p95")
        ax.set_xticks(list(xs), stages)
        ax.set_ylabel("ms")
        ax.legend()
        ax.set_title("Latency per stage")
        fig.tight_layout()
        written.append(out_dir / "latency.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    return written


def collect(settings: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """Verified turn records and feedback rows for ``settings``; also the verification summary."""
    turns: list[dict[str, Any]] = []
    summary: dict[str, Any] = {"ok": True, "failure_count": 0}
    if Path(settings.provenance_dir).exists() and any(Path(settings.provenance_dir).iterdir()):
        v = verify_log(settings.provenance_dir, settings=settings)
        turns = [r.record for r in v.records if r.type == "turn"]
        summary = {"ok": v.ok, "failure_count": len(v.failures), "valid_records": v.valid}
    feedback = [f.model_dump() if hasattr(f, "model_dump") else dict(f)
                for f in SupportStore(Database(settings.db_url, settings=settings)).list_feedback()]
    return turns, feedback, summary
