"""Liveness, readiness and Prometheus metrics of a chat worker.

- ``GET /health/live``: the process answers (a supervisor or orchestrator restarts it when not).
- ``GET /health/ready``: the models are loaded and the bank database answers; 503 with the reasons
  otherwise, so a load balancer sends no customer to a worker that would fail the turn.
- ``GET /metrics``: Prometheus text format (``prometheus-client``): turns by task and outcome,
  latency histograms per pipeline stage, hand-offs, errors, and the stack's component restarts
  (read from ``$SAHAYAK_HOME/logs/restarts.json``, which ``sahayak run``'s supervisor writes).

Metrics carry no customer data: labels are task names, outcomes, stages and component names only.
Chainlit's own ``/health`` stays as it is (the stack waits on it at start-up).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Callable, Iterable

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily

from app.core.settings import get_settings
from app.core.types import TurnResult
from app.core.paths import restarts_path
from app.web.runtime import get_bank

REGISTRY = CollectorRegistry()  # our own, so a re-imported module never registers a metric twice
TURNS = Counter("sahayak_turns", "Customer turns by task and outcome.", ["task", "outcome"], registry=REGISTRY)
STAGE_SECONDS = Histogram(
    "sahayak_turn_stage_seconds", "Time per pipeline stage of a turn.", ["stage"], registry=REGISTRY,
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0))
HANDOFFS = Counter("sahayak_handoffs", "Conversations handed to a person.", registry=REGISTRY)
ERRORS = Counter("sahayak_errors", "Turns that failed with an unexpected error, or a start-up step that failed.",
                 ["where"], registry=REGISTRY)
HANDOFF_TASK = "Human_Handoff"

router = APIRouter()
_lock = threading.Lock()
_ready: dict[str, Any] = {"models": False, "reason": "starting: the models are not loaded yet"}


class _Restarts:
    """The supervisor's restart counts as a counter family (another process writes them)."""

    def __init__(self, path: Callable[[], Path]) -> None:
        self._path = path

    def collect(self) -> Iterable[CounterMetricFamily]:
        family = CounterMetricFamily("sahayak_component_restarts", "Restarts of a stack component by the supervisor.",
                                     labels=["component"])
        try:
            counts = json.loads(self._path().read_text(encoding="utf-8"))
        except (OSError, ValueError):
            counts = {}
        for name, n in sorted(counts.items()):
            family.add_metric([str(name)], float(n))
        yield family


REGISTRY.register(_Restarts(lambda: restarts_path(get_settings().home)))


def observe_turn(result: TurnResult) -> None:
    """Count one served turn and its stage timings."""
    task = result.task or result.intent or "unknown"
    TURNS.labels(task=task, outcome=result.outcome or "unknown").inc()
    for stage, ms in (result.timings_ms or {}).items():
        STAGE_SECONDS.labels(stage=stage).observe(float(ms) / 1000.0)
    if task == HANDOFF_TASK and result.outcome == "success":
        HANDOFFS.inc()


def observe_error(where: str) -> None:
    """Count an unexpected failure (``turn``, ``warm_up``, …)."""
    ERRORS.labels(where=where).inc()


def set_models_ready(ready: bool, reason: str = "") -> None:
    """Record whether the worker's models loaded (its start-up hook calls this)."""
    with _lock:
        _ready.update(models=ready, reason=reason)


@router.get("/health/live")
async def live() -> dict[str, str]:
    """The process is up and serving HTTP."""
    return {"status": "alive"}


@router.get("/health/ready")
def ready() -> JSONResponse:
    """200 when this worker can serve a turn: models loaded and the bank database answering."""
    problems: list[str] = []
    with _lock:
        if not _ready["models"]:
            problems.append(_ready["reason"] or "models not loaded")
    try:
        get_bank().db.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means not ready; say which
        problems.append(f"bank database: {type(exc).__name__}")
    if problems:
        return JSONResponse({"status": "not ready", "problems": problems}, status_code=503)
    return JSONResponse({"status": "ready"})


@router.get("/metrics")
def metrics() -> Response:
    """Prometheus text exposition of this worker's metrics."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
