"""A bank replaces the seeded demo passwords before it deploys (SAHAYAK_ENV=production refuses them
at sign-in): `sahayak bank set-password` is that step, run for real through the CLI."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT


def _cli(home, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "SAHAYAK_HOME": str(home)}
    env.pop("SAHAYAK_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=env, input=stdin,
                          capture_output=True, text=True, timeout=300)


def test_set_password_replaces_the_published_one(tmp_path) -> None:
    from app.bank.service import BankService

    assert _cli(tmp_path, "bank", "seed").returncode == 0
    weak = _cli(tmp_path, "bank", "set-password", "--user", "asha", "--password-stdin", stdin="demo1234\n")
    assert weak.returncode == 1 and "at least 10 characters" in weak.stderr and "Traceback" not in weak.stderr
    unknown = _cli(tmp_path, "bank", "set-password", "--user", "nobody", "--password-stdin", stdin="a-long-secret-1\n")
    assert unknown.returncode == 1 and "nobody" in unknown.stderr
    ok = _cli(tmp_path, "bank", "set-password", "--user", "asha", "--password-stdin", stdin="Correct-Horse-42\n")
    assert ok.returncode == 0, ok.stderr
    bank = BankService(f"sqlite:///{tmp_path / 'bank.db'}")
    assert bank.authenticate("asha", "demo1234") is None
    assert bank.authenticate("asha", "Correct-Horse-42") is not None
