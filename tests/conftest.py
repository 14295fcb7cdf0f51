"""Shared fixtures: an isolated SAHAYAK_HOME per test session, a shared model cache,
and real database URLs (SQLite always; PostgreSQL on 127.0.0.1:5432, required in CI)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Trained models and indexes are cached between runs so the suite stays fast locally;
# CI starts from a clean clone and trains them once (fast test configuration).
os.environ.setdefault("SAHAYAK_MODELS_HOME", str(ROOT / "var" / "test-models"))

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
PG_ADMIN_URL = os.environ.get("SAHAYAK_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def need_server(reason: str) -> None:
    """Skip locally, but fail in CI: a test that needs a server never silently skips there."""
    if IN_CI:
        pytest.fail(f"required server unavailable in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(autouse=True, scope="session")
def sahayak_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every test session gets its own state folder (db, keys, logs, outbox)."""
    home = tmp_path_factory.mktemp("sahayak-home")
    os.environ["SAHAYAK_HOME"] = str(home)
    from app.core.settings import reset_settings

    reset_settings()
    return home


@pytest.fixture(autouse=True, scope="session")
def prepared_models(sahayak_home: Path) -> None:
    """What `sahayak prepare` builds, built once into the shared model cache: the product's getters
    only load (a customer's turn never trains), so the suite prepares like a deployment does.
    Quick when the cache is current (fingerprint checks only)."""
    from app.conversation.wiring import prepare_pipeline

    prepare_pipeline()


@pytest.fixture()
def fresh_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A state folder for one test (its own SQLite bank, keys and logs)."""
    from app.core.settings import reset_settings

    monkeypatch.setenv("SAHAYAK_HOME", str(tmp_path))
    monkeypatch.delenv("SAHAYAK_DATABASE_URL", raising=False)
    reset_settings()
    yield tmp_path
    reset_settings()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A fresh PostgreSQL database for this test session (dropped afterwards)."""
    import sqlalchemy as sa

    name = f"sahayak_test_{uuid.uuid4().hex[:8]}"
    try:
        admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001
        need_server(f"PostgreSQL at {PG_ADMIN_URL} not reachable: {exc}")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Run a database test on SQLite and on a real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bank.db'}"
    return request.getfixturevalue("postgres_url")
