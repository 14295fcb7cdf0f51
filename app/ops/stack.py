"""Start and stop the whole Sahayak stack as child processes, with health checks.

Used by ``sahayak run`` and by the browser tests (same code path, so the tests exercise what a
person runs). Order: graph server → encrypted scoring service → Chainlit chat (the chat is
spawned first, since loading its models is the slowest step). The chat writes its output to
``$SAHAYAK_HOME/logs/chainlit.log``, the graph server to ``$SAHAYAK_HOME/graph/server.log``;
``stop()`` terminates them in reverse order (SIGTERM, then SIGKILL after a grace period).
Spawning, health waits and termination are :mod:`app.ops.procs`.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core.errors import SahayakError
from app.core.net import port_open
from app.core.settings import Settings, get_settings
from app.ops.graph import start_graph_server
from app.ops.procs import spawn, tail, terminate, wait_http_ok
from app.web.runtime import CHAT_APP, chainlit_env
from privacy.service_process import start_in_background

Report = Callable[[str], None]
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass
class Child:
    """One started component: a child process or an in-process handle with a stop()."""

    name: str
    stop_fn: Callable[[], None]
    url: str = ""
    log: Path | None = None
    alive: Callable[[], bool] = lambda: True


@dataclass
class Stack:
    """The running components, stopped in reverse start order."""

    settings: Settings
    host: str = "127.0.0.1"
    port: int = 8000
    children: list[Child] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def dead(self) -> list[Child]:
        """Components whose process has exited."""
        return [c for c in self.children if not c.alive()]

    def stop(self, report: Report | None = None) -> None:
        """Stop every component (idempotent); never raises."""
        while self.children:
            child = self.children.pop()
            try:
                child.stop_fn()
                if report:
                    report(f"stopped {child.name}")
            except Exception as exc:  # noqa: BLE001 - keep stopping the others
                if report:
                    report(f"could not stop {child.name} cleanly: {type(exc).__name__}: {exc}")

    def __enter__(self) -> "Stack":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _start_graph(settings: Settings, report: Report) -> Child | None:
    """The embedded Bolt graph server (provenance.graph_server), unless disabled."""
    if not settings.graph_enabled:
        report("graph server disabled (SAHAYAK_GRAPH_ENABLED=false)")
        return None
    server = start_graph_server(settings)
    if server.external:
        report(f"graph server: using the one already running at {server.uri}")
    proc = server.process
    return Child("graph server", server.stop, url=server.uri, log=server.log_path,
                 alive=(lambda: proc.poll() is None) if proc is not None else (lambda: True))


def _start_scoring(settings: Settings, report: Report) -> Child:
    """The encrypted scoring service (``python -m privacy.service``), once its health check answers."""
    if port_open(settings.scoring_host, settings.scoring_port):
        raise SahayakError(f"port {settings.scoring_port} (scoring service) is already in use; "
                           "stop the other process or set SAHAYAK_SCORING_PORT")
    svc = start_in_background(settings.scoring_host, settings.scoring_port, settings=settings, timeout=120)
    return Child("scoring service", svc.stop, url=svc.base_url, alive=svc.alive)


def _chat_env(settings: Settings, env_extra: dict[str, str] | None) -> dict[str, str]:
    """The Chainlit child's environment: its settings point at this stack's services and bank."""
    env = chainlit_env(settings)
    # The chat's own settings must point at the services this stack started.
    env.update({"SAHAYAK_SCORING_HOST": settings.scoring_host, "SAHAYAK_SCORING_PORT": str(settings.scoring_port),
                "SAHAYAK_NEO4J_URI": settings.neo4j_uri, "SAHAYAK_GRAPH_ENABLED": str(settings.graph_enabled).lower()})
    if settings.scoring_url:
        env["SAHAYAK_SCORING_URL"] = settings.scoring_url
    if settings.models_home:
        env["SAHAYAK_MODELS_HOME"] = str(Path(settings.models_home).resolve())
    # The chat must use this stack's bank, not whatever database the parent's environment names.
    if settings.database_url:
        env["SAHAYAK_DATABASE_URL"] = settings.database_url
    else:
        env.pop("SAHAYAK_DATABASE_URL", None)
    env.update(env_extra or {})
    return env


def _spawn_chat(settings: Settings, host: str, port: int, env_extra: dict[str, str] | None) -> tuple[subprocess.Popen, Path]:
    """Launch the Chainlit child (it loads the models in its start-up hook); returns at once."""
    if port_open(host, port):
        raise SahayakError(f"port {port} on {host} is already in use; choose another with --port")
    log_path = Path(settings.home) / "logs" / "chainlit.log"
    cmd = [sys.executable, "-m", "chainlit", "run", str(CHAT_APP), "--host", host, "--port", str(port), "--headless"]
    # Chainlit writes only into its app root (``.files``, translations): $SAHAYAK_HOME/chainlit.
    return spawn(cmd, log_path, _chat_env(settings, env_extra)), log_path


def _await_chat(proc: subprocess.Popen, log_path: Path, host: str, port: int, timeout: float) -> Child:
    """The chat as a stack component once /health answers; stops it and raises with its log's tail if not."""
    url = f"http://{host}:{port}"
    # Chainlit finishes its start-up hook (model warm-up) before it serves /health.
    if not wait_http_ok(f"{url}/health", timeout, proc):
        terminate(proc)
        raise SahayakError(f"the chat did not become healthy on {url} within {timeout:.0f}s; "
                           f"last log lines ({log_path}):\n{tail(log_path)}")
    return Child("chat (Chainlit)", lambda: terminate(proc), url=url, log=log_path,
                 alive=lambda: proc.poll() is None)


def start_stack(host: str = "127.0.0.1", port: int = 8000, settings: Settings | None = None,
                report: Report | None = None, chat_timeout: float = 300.0,
                env_extra: dict[str, str] | None = None) -> Stack:
    """Start graph server, scoring service and chat; stop what started if a later step fails."""
    s = settings or get_settings()
    say: Report = report or (lambda _m: None)
    if host not in LOOPBACK and not s.allow_public_bind:
        raise SahayakError(f"refusing to bind {host}: Sahayak serves loopback only "
                           "(set SAHAYAK_ALLOW_PUBLIC_BIND=1 behind a TLS proxy if you really mean it)")
    stack = Stack(settings=s, host=host, port=port)
    # The chat loads its models while the graph server and the scoring service start: the
    # slowest of the three sets the start-up time, not their sum. The chat only needs the
    # other two when a turn uses them (and the graph importer rides out a late graph server).
    say("starting chat (loading models)…")
    t_chat = time.perf_counter()
    proc, log_path = _spawn_chat(s, host, port, env_extra)
    pending: Child | None = Child("chat (Chainlit)", lambda: terminate(proc), alive=lambda: proc.poll() is None)
    try:
        for label, starter in (("graph server", lambda: _start_graph(s, say)),
                               ("scoring service", lambda: _start_scoring(s, say))):
            say(f"starting {label}…")
            t0 = time.perf_counter()
            child: Any = starter()
            if child is not None:
                stack.children.append(child)
                say(f"{child.name} healthy at {child.url or '(in-process)'} ({time.perf_counter() - t0:.1f}s)")
        chat = _await_chat(proc, log_path, host, port, chat_timeout)
        pending = None
        stack.children.append(chat)
        say(f"{chat.name} healthy at {chat.url} ({time.perf_counter() - t_chat:.1f}s)")
    except BaseException:
        if pending is not None:
            pending.stop_fn()
        stack.stop(say)
        raise
    return stack
