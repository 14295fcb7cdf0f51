"""Issue 19, findings 3 (b, c) and 14: the graph has no default password (a random one per install,
owner-only under SAHAYAK_HOME/keys), listens on loopback only with Studio off in production mode,
and writes nothing into the folder it is started from. Each test starts a real ArcadeDB server."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from app.core.net import free_port
from app.core.paths import REPO_ROOT
from app.core.settings import Settings, reset_settings
from app.ops.graph import start_graph_server
from provenance.graph_server import reachable

pytestmark = pytest.mark.graph

OLD_DEFAULT = "sahayak-graph"


def _private(folder: Path) -> list[str]:
    """Paths under ``folder`` that someone other than the owner could read or enter."""
    return [f"{p} {stat.filemode(p.stat().st_mode)}" for p in [folder, *folder.rglob("*")]
            if not p.is_symlink() and p.stat().st_mode & 0o077]


def _listening(pid: int) -> list[tuple[str, int]]:
    proc = psutil.Process(pid)
    procs = [proc, *proc.children(recursive=True)]
    return [(c.laddr.ip, c.laddr.port) for p in procs for c in p.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN]


def test_graph_password_is_random_per_install_and_owner_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAHAYAK_NEO4J_PASSWORD", raising=False)
    a, b = Settings(home=tmp_path / "a"), Settings(home=tmp_path / "b")
    secret = a.graph_secret
    assert secret != OLD_DEFAULT and len(secret) >= 32 and secret != b.graph_secret
    assert Settings(home=tmp_path / "a").graph_secret == secret  # stable for the install
    key = tmp_path / "a" / "keys" / "graph_password"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    monkeypatch.setenv("SAHAYAK_NEO4J_PASSWORD", "from-the-environment")
    assert Settings(home=tmp_path / "a").graph_secret == "from-the-environment"


def test_launched_graph_server_is_private_and_loopback_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAHAYAK_NEO4J_PASSWORD", raising=False)
    monkeypatch.delenv("SAHAYAK_GRAPH_PASSWORD", raising=False)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    home = tmp_path / "home"
    settings = Settings(home=home, neo4j_uri=f"bolt://127.0.0.1:{free_port()}")
    settings.ensure_dirs()
    server = start_graph_server(settings, reuse=False, timeout=180)
    try:
        secret = settings.graph_secret
        assert reachable(server.uri, "root", secret)
        assert not reachable(server.uri, "root", OLD_DEFAULT)  # the documented default no longer opens it
        # Every listener (Bolt and ArcadeDB's HTTP) is on loopback.
        listening = _listening(server.pid)
        assert listening and all(ip in ("127.0.0.1", "::ffff:127.0.0.1") for ip, _ in listening), listening
        assert server.http_port in {port for _, port in listening}
        base = f"http://127.0.0.1:{server.http_port}"
        # No Studio, and the HTTP API answers nobody without the install's password.
        home_page = httpx.get(f"{base}/", timeout=10)
        assert "studio" not in home_page.text.lower() or home_page.status_code >= 400, home_page.text[:200]
        for auth in (None, ("root", OLD_DEFAULT)):
            r = httpx.get(f"{base}/api/v1/databases", auth=auth, timeout=10)
            assert r.status_code in (401, 403), (auth, r.status_code, r.text[:200])
        # The child works in its data folder, not in ours or the repository.
        assert Path(psutil.Process(server.pid).cwd()) == (home / "graph").resolve()
    finally:
        server.stop()
    assert list(cwd.iterdir()) == []
    assert (home / "graph" / "log").is_dir()
    assert _private(home) == []


def test_graph_server_run_by_hand_writes_nothing_into_its_working_folder(tmp_path: Path) -> None:
    """``python -m provenance.graph_server`` started from any folder keeps ./log out of it."""
    cwd, root, home = tmp_path / "somewhere", tmp_path / "graph", tmp_path / "home"
    cwd.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("SAHAYAK_NEO4J_PASSWORD", "SAHAYAK_GRAPH_PASSWORD")}
    env.update(SAHAYAK_HOME=str(home), PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])))
    repo_log_before = (REPO_ROOT / "log").exists()
    proc = subprocess.Popen([sys.executable, "-m", "provenance.graph_server", "--root", str(root), "--bolt-port",
                             str(port), "--http-port", str(free_port())], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        reset_settings()
        secret = None
        for _ in range(360):
            if proc.poll() is not None:
                break
            key = home / "keys" / "graph_password"
            secret = secret or (key.read_text().strip() if key.exists() else None)
            if secret and reachable(f"bolt://127.0.0.1:{port}", "root", secret, timeout=2.0):
                break
            time.sleep(0.5)
        assert proc.poll() is None, proc.stdout.read().decode(errors="replace")[-2000:]
        assert secret and reachable(f"bolt://127.0.0.1:{port}", "root", secret)
        assert not reachable(f"bolt://127.0.0.1:{port}", "root", OLD_DEFAULT)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    assert list(cwd.iterdir()) == [], list(cwd.iterdir())
    assert (REPO_ROOT / "log").exists() == repo_log_before
    assert (root / "log").is_dir()
    assert _private(root) == [] and _private(home) == []
