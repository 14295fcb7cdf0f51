"""Two real chat workers behind a real HAProxy (Debian's; installed by .ci/run) on loopback, sharing
PostgreSQL, Redis and CHAINLIT_AUTH_SECRET, each with its own SAHAYAK_HOME (provenance log, keys).

Checks: the balancer spreads new clients over both workers and keeps a client on its worker
(cookie), a customer converses through it in headless Chromium, and when that worker is killed
(SIGKILL) the same browser reloads onto the other worker, still logged in, and is answered."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from app.bank.seed import seed
from app.core.net import free_port
from app.core.settings import Settings
from app.ops.procs import terminate
from app.ops.stack import start_chat
from app.web.runtime import auth_secret
from tests.conftest import need_server
from tests.web.conftest import TURN_TIMEOUT_MS, _need_chromium
from tests.web.driver import ChatPage

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.timeout(1200)]

HAPROXY_CFG = """\
global
    maxconn 256
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h          # Chainlit's websocket
    option redispatch          # a client whose worker is gone goes to another one
    retries 2
frontend chat
    bind 127.0.0.1:{front}
    default_backend workers
backend workers
    balance roundrobin
    cookie SAHAYAK_WORKER insert indirect nocache httponly
    option httpchk GET /health
    http-check expect status 200
    default-server inter 1s fall 2 rise 1
    http-response set-header X-Sahayak-Worker %s
{servers}
"""


def _worker_of(resp: httpx.Response) -> str:
    return resp.headers["x-sahayak-worker"]


@pytest.fixture()
def balanced(tmp_path: Path, postgres_url: str):
    _need_chromium()
    haproxy = shutil.which("haproxy")
    if not haproxy:
        need_server("haproxy is not installed (apt-get install haproxy)")
    import redis

    try:
        redis.Redis.from_url("redis://127.0.0.1:6379/15", socket_connect_timeout=2).ping()
    except redis.exceptions.RedisError as exc:
        need_server(f"Redis not reachable: {exc}")
    seed(postgres_url)
    common = dict(database_url=postgres_url, models_home=Path(os.environ["SAHAYAK_MODELS_HOME"]),
                  graph_enabled=False, scoring_port=free_port())
    first = Settings(home=tmp_path / "w1", **common)
    first.ensure_dirs()
    front = free_port()
    # Behind a proxy the browser's origin is the balancer's, not a worker's: the socket's Origin check
    # (issue 19) must be told, as docs/deploy.md says.
    shared = {"CHAINLIT_AUTH_SECRET": auth_secret(first), "SAHAYAK_REDIS_URL": "redis://127.0.0.1:6379/15",
              "SAHAYAK_REDIS_PREFIX": f"lb-{tmp_path.name}", "SAHAYAK_ALLOWED_ORIGINS": f"http://127.0.0.1:{front}"}
    workers: dict[str, object] = {}
    proc = None
    try:
        for name in ("w1", "w2"):
            s = first if name == "w1" else Settings(home=tmp_path / name, **common)
            s.ensure_dirs()
            workers[name] = start_chat(s, "127.0.0.1", free_port(), timeout=600, env_extra=shared)
        servers = "\n".join(f"    server {n} 127.0.0.1:{c.url.rsplit(':', 1)[1]} check cookie {n}"
                            for n, c in workers.items())
        cfg = tmp_path / "haproxy.cfg"
        cfg.write_text(HAPROXY_CFG.format(front=front, servers=servers), encoding="utf-8")
        check = subprocess.run([haproxy, "-c", "-f", str(cfg)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        proc = subprocess.Popen([haproxy, "-db", "-f", str(cfg)], cwd=tmp_path, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{front}"
        deadline = time.monotonic() + 60
        seen: set[str] = set()
        while seen != set(workers):  # both workers pass HAProxy's health check
            assert time.monotonic() < deadline, f"HAProxy did not reach both workers: {seen}"
            try:
                seen.add(_worker_of(httpx.get(f"{url}/health", timeout=5)))
            except (httpx.HTTPError, KeyError):
                time.sleep(0.5)
        yield url, workers
    finally:
        if proc is not None:
            terminate(proc)
        for child in workers.values():
            child.stop_fn()


def test_two_workers_behind_haproxy_sticky_and_failover(balanced, chromium_browser) -> None:
    url, workers = balanced
    # New clients are spread over both workers; a client with the cookie stays on its worker.
    fresh = {_worker_of(httpx.get(f"{url}/health", timeout=5)) for _ in range(4)}
    assert fresh == {"w1", "w2"}
    with httpx.Client(base_url=url, timeout=5) as client:
        first = _worker_of(client.get("/health"))
        assert client.cookies.get("SAHAYAK_WORKER") == first
        assert {_worker_of(client.get("/health")) for _ in range(4)} == {first}

    from playwright.sync_api import expect

    context = chromium_browser.new_context(base_url=url)  # the session's Chromium (one sync Playwright per thread)
    try:
        context.set_default_timeout(TURN_TIMEOUT_MS)
        page = context.new_page()
        chat = ChatPage(page)
        chat.login_ok("asha", os.environ.get("SAHAYAK_DEMO_PASSWORD", "demo1234"))
        assert "₹" in chat.send("what's my balance")
        sticky = next(c["value"] for c in context.cookies() if c["name"] == "SAHAYAK_WORKER")
        other = "w2" if sticky == "w1" else "w1"

        # The customer's worker dies; the same browser reloads and lands on the other one.
        os.kill(workers[sticky].pid, signal.SIGKILL)
        workers[sticky].proc.wait(timeout=30)
        page.reload()
        expect(page.locator("#chat-input")).to_be_visible(timeout=TURN_TIMEOUT_MS)  # still logged in
        assert "₹" in chat.send("what's my balance")
        landed = next(c["value"] for c in context.cookies() if c["name"] == "SAHAYAK_WORKER")
        assert landed == other
    finally:
        context.close()
