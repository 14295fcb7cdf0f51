"""Launch the embedded Bolt graph server (``python -m provenance.graph_server``) as a child process.

The server itself (ArcadeDB with its Bolt plugin) lives in :mod:`provenance.graph_server`; this is
the launcher that ``sahayak run``, ``sahayak graph serve``, the benchmarks and the test suite share.
Everything binds to 127.0.0.1; data and the server's own logs live under ``$SAHAYAK_HOME/graph``
(the child runs with that folder as its working directory, so nothing lands in the caller's).
The password is this install's random one (:attr:`Settings.graph_secret`), never a default.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from app.core.environment import private_umask
from app.core.errors import SahayakError
from app.core.net import free_port
from app.core.settings import Settings, get_settings
from app.ops.procs import child_env, spawn, tail, terminate, wait_healthy
from provenance.graph_server import reachable


def bolt_port(settings: Settings) -> int:
    """The Bolt port of ``settings.neo4j_uri`` (7687 when it names none)."""
    return urlparse(settings.neo4j_uri).port or 7687


@dataclass
class GraphServer:
    """A running graph server (our child process, or an external one we found)."""

    uri: str
    user: str
    password: str
    database: str | None
    process: Any = None  # subprocess.Popen of our child; None for an external server
    log_path: Path | None = None
    http_port: int | None = None  # ArcadeDB's HTTP listener (loopback only; nothing of ours uses it)

    @property
    def external(self) -> bool:
        return self.process is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def alive(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            return False
        return reachable(self.uri, self.user, self.password, self.database)

    def stop(self, timeout: float = 20.0) -> None:
        """Stop our child process (close its stdin, then SIGTERM, then SIGKILL); an external
        server is left alone."""
        if self.process is not None:
            terminate(self.process, grace=10.0, eof_grace=timeout)

    def __enter__(self) -> "GraphServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def start_graph_server(settings: Settings | None = None, *, data_dir: Path | None = None, port: int | None = None,
                       http_port: int | None = None, timeout: float = 120.0, reuse: bool = True) -> GraphServer:
    """Start the embedded Bolt server as a child process and wait until it answers.

    With ``reuse`` (default) an already reachable server at ``settings.neo4j_uri`` is used
    as is (e.g. a real Neo4j, or one started by another command). Raises SahayakError with
    the server log's tail when it does not come up within ``timeout`` seconds.
    """
    private_umask()  # the graph's files (and the child's) are owner-only
    settings = settings or get_settings()
    port = port or bolt_port(settings)
    uri = f"bolt://127.0.0.1:{port}"
    user, password, database = settings.neo4j_user, settings.graph_secret, settings.neo4j_database
    if reuse and reachable(uri, user, password, database):
        return GraphServer(uri, user, password, database)
    data_dir = Path(data_dir or Path(settings.home) / "graph").resolve()
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    log_path = data_dir / "server.log"
    http_port = http_port or free_port()
    cmd = [sys.executable, "-m", "provenance.graph_server", "--root", str(data_dir),
           "--bolt-port", str(port), "--http-port", str(http_port),
           "--heap", settings.graph_heap, "--until-stdin-eof"]
    # The password travels in the child's environment (read there by its settings), not on its
    # command line, where every local user could read it. The child works in its data folder:
    # ArcadeDB writes ./log relative to the working directory.
    proc = spawn(cmd, log_path, child_env(SAHAYAK_GRAPH_PASSWORD=password), cwd=data_dir, stdin_pipe=True)
    server = GraphServer(uri, user, password, database, proc, log_path, http_port)
    if wait_healthy(lambda: reachable(uri, user, password, database, timeout=2.0), timeout, proc, interval=0.5):
        return server
    server.stop()
    raise SahayakError(f"graph server did not start on {uri} within {timeout:.0f}s; log {log_path}: "
                       + " | ".join(tail(log_path, 5).splitlines()))
