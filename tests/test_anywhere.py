"""The installed CLI runs from any folder: shipped data is found next to the code (or through
SAHAYAK_DATA_DIR), and nothing is written outside SAHAYAK_HOME — not the current folder, not $HOME."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


def _sahayak() -> list[str]:
    """The console script installed next to this interpreter (what an operator types), else ``-m app.cli``."""
    script = Path(sys.executable).with_name("sahayak")
    return [str(script)] if script.exists() else [sys.executable, "-m", "app.cli"]


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([*_sahayak(), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture()
def elsewhere(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """An empty working folder and an empty $HOME outside the checkout, and an environment
    whose only state folder is a separate SAHAYAK_HOME."""
    cwd, home, fake_user_home = tmp_path / "cwd", tmp_path / "state", tmp_path / "user-home"
    for d in (cwd, home, fake_user_home):
        d.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAHAYAK_")}
    env.update(SAHAYAK_HOME=str(home), HOME=str(fake_user_home),
               # the shared test model cache (an absolute path; trained once per run)
               SAHAYAK_MODELS_HOME=os.environ["SAHAYAK_MODELS_HOME"],
               # the checkout's code wins over whatever the venv has installed
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    return cwd, env


def test_cli_from_another_folder_writes_only_under_home(elsewhere):
    cwd, env = elsewhere
    seeded = _run(["bank", "seed"], cwd, env)
    assert seeded.returncode == 0, seeded.stderr
    assert "seeded" in seeded.stdout

    asked = _run(["ask", "what is the neft limit"], cwd, env)
    assert asked.returncode == 0, asked.stderr
    assert "NEFT" in asked.stdout and "Source:" in asked.stdout

    turn = _run(["turn", "--user", "asha", "--session", "anywhere", "--json", "what's my balance"], cwd, env)
    assert turn.returncode == 0, turn.stderr
    reply = json.loads(turn.stdout.strip().splitlines()[-1])
    assert reply["task"] == "Check_Balance" and "₹" in reply["reply"]

    assert list(cwd.iterdir()) == [], "the CLI wrote into the current folder"
    assert list(Path(env["HOME"]).rglob("*")) == [], "the CLI wrote into $HOME"
    assert (Path(env["SAHAYAK_HOME"]) / "bank.db").exists()


def test_data_dir_override(elsewhere, tmp_path):
    """SAHAYAK_DATA_DIR replaces the shipped data: an edited copy of the bank facts is what the bank seeds."""
    cwd, env = elsewhere
    data = tmp_path / "data-copy"
    shutil.copytree(ROOT / "data", data)
    facts = data / "bank_facts.yaml"
    facts.write_text(facts.read_text(encoding="utf-8").replace("name: Sahayak Bank", "name: Override Bank", 1),
                     encoding="utf-8")
    seeded = _run(["bank", "seed"], cwd, {**env, "SAHAYAK_DATA_DIR": str(data)})
    assert seeded.returncode == 0, seeded.stderr
    with sqlite3.connect(Path(env["SAHAYAK_HOME"]) / "bank.db") as db:
        names = [n for (n,) in db.execute("SELECT name FROM branches")]
    assert names and all(n.startswith("Override Bank, ") for n in names)
    assert list(cwd.iterdir()) == []
