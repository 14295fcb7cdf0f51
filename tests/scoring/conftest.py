"""Shared fixtures for the encrypted-scoring tests: real TenSEAL keys and a real service.

Key generation and the service start are the slow parts, so both are session-scoped.
"""

from __future__ import annotations

from typing import Any

import pytest

from app.core.net import free_port
from models.scoring import SHIPPED_DIR, ScoringModel, load_artifact
from privacy import ckks
from privacy.client import ScoringClient
from privacy.service_process import start_in_background


@pytest.fixture(scope="session")
def artifact() -> ScoringModel:
    return load_artifact(path=SHIPPED_DIR / "loan_lr.json")


@pytest.fixture(scope="session")
def logit_keys() -> Any:
    return ckks.generate_keys("logit")


@pytest.fixture(scope="session")
def service() -> Any:
    """The scoring service as a real child process (uvicorn) on a free loopback port."""
    svc = start_in_background(host="127.0.0.1", port=free_port(), timeout=90)
    yield svc
    svc.stop()


@pytest.fixture(scope="session")
def client(service: Any, artifact: ScoringModel) -> Any:
    c = ScoringClient(base_url=service.base_url, artifact=artifact, timeout=30)
    yield c
    c.close()


@pytest.fixture(scope="session")
def session_id(client: Any) -> str:
    return client.register()
