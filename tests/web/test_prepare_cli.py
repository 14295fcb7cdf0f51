"""`sahayak prepare` on a fresh state folder: every step runs through the owning module and
leaves what `sahayak run` needs (bank, chat-history schema, login secret, signing key)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest
import sqlalchemy as sa

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def test_prepare_fresh_home(tmp_path) -> None:
    env = dict(os.environ, SAHAYAK_HOME=str(tmp_path), COLUMNS="200")
    env.pop("SAHAYAK_DATABASE_URL", None)
    env.pop("CHAINLIT_AUTH_SECRET", None)
    proc = subprocess.run([sys.executable, "-m", "app.cli", "prepare"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    for step in ("Seed the demo bank", "Provenance signing key", "Chat login secret", "Chat history database",
                 "Intent model", "Knowledge-base index", "Encrypted-scoring model", "ready in"):
        assert step in out, out
    secret = tmp_path / "keys" / "chainlit_auth_secret"
    assert len(secret.read_text().strip()) >= 40
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'chainlit.db'}")
    try:
        tables = set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"users", "threads", "steps", "elements", "feedbacks"} <= tables
    from app.bank.service import BankService

    bank = BankService(f"sqlite:///{tmp_path / 'bank.db'}")
    assert bank.authenticate("meera", "staff1234").role == "staff"
