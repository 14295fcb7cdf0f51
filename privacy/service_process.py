"""The encrypted scoring service as a child process: start it, wait for its health check, stop it.

Kept apart from :mod:`privacy.service` (the FastAPI app) so that whoever only launches the
service (``sahayak run``, the benchmark, tests) does not import FastAPI at start-up.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import httpx

from app.core.errors import SahayakError
from app.core.settings import get_settings


class ServiceProcess:
    """The scoring service running as a child process (``make run``, tests)."""

    def __init__(self, proc: subprocess.Popen, base_url: str) -> None:
        self.proc, self.base_url = proc, base_url

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the child (SIGTERM, then SIGKILL) and wait for it."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)

    def __enter__(self) -> "ServiceProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_healthy(base_url: str, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> bool:
    """Poll ``/v1/health`` until it answers 200 (False on timeout or when ``proc`` exits)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            if httpx.get(f"{base_url}/v1/health", timeout=1.0).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    return False


def start_in_background(host: str | None = None, port: int | None = None, settings: Any = None,
                        timeout: float = 60.0) -> ServiceProcess:
    """Start ``python -m privacy.service`` as a child process and wait for its health check."""
    settings = settings or get_settings()
    host, port = host or settings.scoring_host, port or settings.scoring_port
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    proc = subprocess.Popen([sys.executable, "-m", "privacy.service", "--host", host, "--port", str(port)],
                            cwd=root, env=env, stdin=subprocess.DEVNULL)
    base = f"http://{host}:{port}"
    if not wait_healthy(base, timeout, proc):
        ServiceProcess(proc, base).stop()
        raise SahayakError(f"the scoring service did not become healthy on {base} within {timeout:.0f}s")
    return ServiceProcess(proc, base)
