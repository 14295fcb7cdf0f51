"""Issue 19, finding 8: nothing under SAHAYAK_HOME is readable by other users. The real CLI is run
as a child process under a permissive umask (022, the usual default); it must narrow it itself."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def _sahayak(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, SAHAYAK_HOME=str(home), PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    env.pop("SAHAYAK_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "app.cli", *args], env=env, cwd=home.parent, capture_output=True,
                          text=True, timeout=600, preexec_fn=lambda: os.umask(0o022))


def test_cli_run_leaves_every_file_owner_only(tmp_path: Path) -> None:
    home = tmp_path / "home"
    r = _sahayak(home, "bank", "seed")
    assert r.returncode == 0, r.stderr
    r = _sahayak(home, "turn", "send 500 to ravi", "--user", "asha", "--session", "modes-1", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1])["intent"]
    r = _sahayak(home, "turn", "yes", "--user", "asha", "--session", "modes-1")
    assert r.returncode == 0, r.stderr
    written = [p for p in home.rglob("*")]
    names = {p.name for p in written}
    assert "bank.db" in names and any(p.suffix == ".jsonl" for p in written), names  # the run really wrote state
    exposed = [f"{p.relative_to(home)} {stat.filemode(p.stat().st_mode)}" for p in [home, *written]
               if not p.is_symlink() and p.stat().st_mode & 0o077]
    assert exposed == []
