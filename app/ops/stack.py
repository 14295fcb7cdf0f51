"""Start and stop the whole Sahayak stack as child processes, with health checks.

Used by ``sahayak run`` and by the browser tests (same code path, so the tests exercise what a
person runs). Order: graph server → encrypted scoring service → Chainlit chat (the chat is
spawned first, since loading its models is the slowest step). The chat writes its output to
``$SAHAYAK_HOME/logs/chainlit.log``, the graph server to ``$SAHAYAK_HOME/graph/server.log``;
``stop()`` terminates them in reverse order (SIGTERM, then SIGKILL after a grace period).

Supervision: :meth:`Stack.supervise` (called every second by ``sahayak run``) restarts a crashed
component on its old port with exponential back-off (:class:`Backoff`) and logs each event to
``$SAHAYAK_HOME/logs/stack.log``. The others keep running meanwhile: the chat answers everything
that does not need the missing part (a loan enquiry says scoring is unavailable; the staff console
says the graph is unavailable). Spawning, health waits and termination are :mod:`app.ops.procs`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core.errors import SahayakError
from app.core.fsutil import write_atomic
from app.core.net import port_open
from app.core.paths import restarts_path
from app.core.settings import Settings, get_settings
from app.ops.graph import start_graph_server
from app.ops.procs import spawn, tail, terminate, wait_http_ok
from app.web.runtime import CHAT_APP, chainlit_env
from privacy.service_process import start_in_background

Report = Callable[[str], None]
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass
class Child:
    """One started component: a child process (``proc``) with a stop() and, where the stack can
    start it again, a ``restart`` factory that returns the new component."""

    name: str
    stop_fn: Callable[[], None]
    url: str = ""
    log: Path | None = None
    proc: subprocess.Popen | None = None  # None: not our process (an external graph server)
    restart: Callable[[], "Child"] | None = None

    def alive(self) -> bool:
        """False once our process has exited (an external component counts as alive)."""
        return self.proc is None or self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def exit_code(self) -> int | None:
        return self.proc.poll() if self.proc is not None else None


@dataclass(frozen=True)
class Backoff:
    """Restart delays: ``base_s`` after the first crash, doubling per crash up to ``max_s``; a
    component that then stays up ``stable_s`` starts again from ``base_s``. After ``give_up_after``
    failed restarts in a row the stack stops trying (and ``sahayak run`` exits)."""

    base_s: float = 1.0
    max_s: float = 30.0
    stable_s: float = 60.0
    give_up_after: int = 10

    def delay(self, crashes: int) -> float:
        """Seconds to wait before restarting after the ``crashes``-th crash in a row (1-based)."""
        return min(self.max_s, self.base_s * 2 ** max(0, crashes - 1))


@dataclass
class _Watch:
    """Supervision state of one component (by name)."""

    crashes: int = 0  # crashes in a row (reset once the component stays up backoff.stable_s)
    failed_restarts: int = 0  # restart attempts in a row that did not come up
    restarts: int = 0  # successful restarts, all told
    up_since: float = field(default_factory=time.monotonic)
    next_try: float | None = None  # when a dead component is due to be restarted


@dataclass
class Stack:
    """The running components, supervised (:meth:`supervise`) and stopped in reverse start order.

    Every supervision event is passed to ``report`` and appended to ``$SAHAYAK_HOME/logs/stack.log``."""

    settings: Settings
    host: str = "127.0.0.1"
    port: int = 8000
    children: list[Child] = field(default_factory=list)
    report: Report | None = None
    backoff: Backoff = field(default_factory=Backoff)
    _watch: dict[str, _Watch] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return Path(self.settings.home) / "logs" / "stack.log"

    def say(self, message: str) -> None:
        """Report ``message`` and keep it, timestamped, in the stack log."""
        if self.report:
            self.report(message)
        try:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log_path, "a", encoding="utf-8") as f:
                f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {message}\n")
        except OSError:  # a full or read-only disk must not take the supervisor down
            pass

    def restarts(self) -> dict[str, int]:
        """Successful restarts per component name."""
        return {name: w.restarts for name, w in self._watch.items()}

    def dead(self) -> list[Child]:
        """Components whose process has exited."""
        return [c for c in self.children if not c.alive()]

    def supervise(self) -> list[Child]:
        """One supervision pass: restart each dead component whose back-off delay has passed.

        Returns the dead components the stack cannot bring back (no restart factory, or
        ``backoff.give_up_after`` failed restarts in a row); the others keep running meanwhile, so
        a dead scoring service or graph server never stops the chat."""
        now = time.monotonic()
        lost: list[Child] = []
        for i, child in enumerate(list(self.children)):
            w = self._watch.setdefault(child.name, _Watch())
            if child.alive():
                if w.crashes and now - w.up_since >= self.backoff.stable_s:
                    w.crashes = 0
                continue
            if child.restart is None or w.failed_restarts >= self.backoff.give_up_after:
                lost.append(child)
                continue
            if w.next_try is None:  # first seen dead: schedule the restart
                w.crashes += 1
                w.next_try = now + self.backoff.delay(w.crashes)
                self.say(f"{child.name} stopped unexpectedly (exit code {child.exit_code}); restarting in "
                         f"{w.next_try - now:.0f}s" + (f" (log: {child.log})" if child.log else ""))
            if now < w.next_try:
                continue
            try:
                child.stop_fn()  # reap it and release what it held (pipes)
            except Exception:  # noqa: BLE001 - it is dead already
                pass
            t0 = time.perf_counter()
            try:
                new = child.restart()
            except Exception as exc:  # noqa: BLE001 - retry later, with a longer delay
                w.failed_restarts += 1
                delay = self.backoff.delay(w.crashes + w.failed_restarts)
                w.next_try = time.monotonic() + delay
                self.say(f"{child.name} did not restart ({type(exc).__name__}: {exc}); next try in {delay:.0f}s")
                continue
            self.children[i] = new
            w.failed_restarts, w.next_try, w.up_since = 0, None, time.monotonic()
            w.restarts += 1
            self._save_restarts()
            self.say(f"{new.name} restarted at {new.url or '(in-process)'} (pid {new.pid}, "
                     f"{time.perf_counter() - t0:.1f}s; restart {w.restarts})")
        return lost

    def _save_restarts(self) -> None:
        """Each component's restart count, for the chat's /metrics (``sahayak_component_restarts``)."""
        counts = self.restarts()
        try:
            path = restarts_path(self.settings.home)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, json.dumps(counts, sort_keys=True))
        except OSError as exc:  # a full disk must not stop the supervision itself
            self.say(f"could not record restart counts: {exc}")

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
        return Child("graph server", server.stop, url=server.uri)
    # Same port and data folder again: the chat's importer reconnects and catches up from its cursor.
    return Child("graph server", server.stop, url=server.uri, log=server.log_path, proc=server.process,
                 restart=lambda: _start_graph(settings, report))


def _start_scoring(settings: Settings, report: Report | None = None) -> Child:
    """The encrypted scoring service (``python -m privacy.service``), once its health check answers."""
    if port_open(settings.scoring_host, settings.scoring_port):
        raise SahayakError(f"port {settings.scoring_port} (scoring service) is already in use; "
                           "stop the other process or set SAHAYAK_SCORING_PORT")
    svc = start_in_background(settings.scoring_host, settings.scoring_port, settings=settings, timeout=120)
    # Same port again: the chat's scoring client registers its context afresh on the first 404.
    return Child("scoring service", svc.stop, url=svc.base_url, proc=svc.proc,
                 restart=lambda: _start_scoring(settings, report))


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


def _await_chat(proc: subprocess.Popen, log_path: Path, host: str, port: int, timeout: float,
                restart: Callable[[], Child] | None = None) -> Child:
    """The chat as a stack component once /health answers; stops it and raises with its log's tail if not."""
    url = f"http://{host}:{port}"
    # Chainlit finishes its start-up hook (model warm-up) before it serves /health.
    if not wait_http_ok(f"{url}/health", timeout, proc):
        terminate(proc)
        raise SahayakError(f"the chat did not become healthy on {url} within {timeout:.0f}s; "
                           f"last log lines ({log_path}):\n{tail(log_path)}")
    return Child("chat (Chainlit)", lambda: terminate(proc), url=url, log=log_path, proc=proc, restart=restart)


def _chat_restarter(settings: Settings, host: str, port: int, env_extra: dict[str, str] | None,
                    timeout: float) -> Callable[[], Child]:
    """A factory that starts the chat again on the same port (for the supervisor)."""
    def again() -> Child:
        proc, log_path = _spawn_chat(settings, host, port, env_extra)
        return _await_chat(proc, log_path, host, port, timeout, restart=again)
    return again


def start_chat(settings: Settings, host: str, port: int, *, timeout: float = 300.0,
               env_extra: dict[str, str] | None = None) -> Child:
    """One chat worker (Chainlit) on ``host:port``, once /health answers; several of them behind a
    load balancer share the bank database and ``CHAINLIT_AUTH_SECRET`` (both from ``settings``)."""
    proc, log_path = _spawn_chat(settings, host, port, env_extra)
    return _await_chat(proc, log_path, host, port, timeout,
                       restart=_chat_restarter(settings, host, port, env_extra, timeout))


def start_stack(host: str = "127.0.0.1", port: int = 8000, settings: Settings | None = None,
                report: Report | None = None, chat_timeout: float = 300.0,
                env_extra: dict[str, str] | None = None, chat: bool = True) -> Stack:
    """Start graph server, scoring service and (unless ``chat`` is False) the chat; stop what
    started if a later step fails. The returned stack restarts a crashed one on :meth:`Stack.supervise`."""
    s = settings or get_settings()
    if host not in LOOPBACK and not s.allow_public_bind:
        raise SahayakError(f"refusing to bind {host}: Sahayak serves loopback only "
                           "(set SAHAYAK_ALLOW_PUBLIC_BIND=1 behind a TLS proxy if you really mean it)")
    stack = Stack(settings=s, host=host, port=port, report=report)
    say: Report = stack.say
    # The chat loads its models while the graph server and the scoring service start: the
    # slowest of the three sets the start-up time, not their sum. The chat only needs the
    # other two when a turn uses them (and the graph importer rides out a late graph server).
    pending: Child | None = None
    if chat:
        say("starting chat (loading models)…")
        t_chat = time.perf_counter()
        proc, log_path = _spawn_chat(s, host, port, env_extra)
        pending = Child("chat (Chainlit)", lambda: terminate(proc), proc=proc)
    try:
        for label, starter in (("graph server", lambda: _start_graph(s, say)),
                               ("scoring service", lambda: _start_scoring(s, say))):
            say(f"starting {label}…")
            t0 = time.perf_counter()
            child: Any = starter()
            if child is not None:
                stack.children.append(child)
                say(f"{child.name} healthy at {child.url or '(in-process)'} (pid {child.pid}, "
                    f"{time.perf_counter() - t0:.1f}s)")
        if chat:
            web = _await_chat(proc, log_path, host, port, chat_timeout,
                              restart=_chat_restarter(s, host, port, env_extra, chat_timeout))
            pending = None
            stack.children.append(web)
            say(f"{web.name} healthy at {web.url} (pid {web.pid}, {time.perf_counter() - t_chat:.1f}s)")
    except BaseException:
        if pending is not None:
            pending.stop_fn()
        stack.stop(say)
        raise
    return stack
