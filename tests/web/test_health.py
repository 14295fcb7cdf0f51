"""The chat worker's readiness and metrics endpoints, on a FastAPI app with just those routes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.bank.seed import seed
from app.conversation.wiring import build_assistant
from app.core.paths import restarts_path
from app.core.settings import get_settings
from app.core.types import MessageEnvelope
from app.web import health


@pytest.fixture()
def client(fresh_home: Path, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setattr(health, "_ready", {"models": False, "reason": "starting: the models are not loaded yet"})
    app = FastAPI()
    app.include_router(health.router)
    return TestClient(app)


def test_not_ready_until_the_models_load_then_ready(client: TestClient) -> None:
    seed(get_settings().db_url)
    r = client.get("/health/ready")
    assert r.status_code == 503 and r.json()["problems"] == ["starting: the models are not loaded yet"]
    health.set_models_ready(True)
    assert client.get("/health/ready").json() == {"status": "ready"}
    assert client.get("/health/live").json() == {"status": "alive"}


def test_not_ready_when_the_bank_database_does_not_answer(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken:
        class db:  # noqa: N801 - the shape of BankService.db
            @staticmethod
            def ping() -> None:
                raise OSError("connection refused")

    health.set_models_ready(True)
    monkeypatch.setattr(health, "get_bank", lambda: Broken())
    r = client.get("/health/ready")
    assert r.status_code == 503 and r.json()["problems"] == ["bank database: OSError"]


def test_metrics_count_real_turns_and_the_supervisors_restarts(client: TestClient) -> None:
    settings = get_settings()
    seed(settings.db_url)
    assistant = build_assistant(settings)
    before = health.TURNS.labels(task="Check_Balance", outcome="success")._value.get()
    for text in ("what's my balance?", "talk to a human"):
        health.observe_turn(assistant.handle(MessageEnvelope(user_id="asha", session_id="m1", channel="test", text=text)))
    path = restarts_path(settings.home)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"scoring": 2, "graph": 0}))
    text = client.get("/metrics").text
    assert health.TURNS.labels(task="Check_Balance", outcome="success")._value.get() == before + 1
    assert 'sahayak_component_restarts_total{component="scoring"} 2.0' in text
    assert 'sahayak_turn_stage_seconds_count{stage="total"}' in text
    assert "sahayak_handoffs_total" in text
