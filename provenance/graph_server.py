"""The embedded graph server: ArcadeDB (PyPI ``arcadedb-embedded``) with its Bolt plugin.

No Neo4j server can be installed here, but ArcadeDB speaks Bolt and openCypher, so the
official ``neo4j`` driver talks to it exactly as to Neo4j. The server is a JVM, so it runs
as a child process (``python -m provenance.graph_server``) that the CLI, ``sahayak run``
and the test suite start and stop with :func:`start` / :meth:`GraphServer.stop`.
Everything binds to 127.0.0.1; data lives under ``$SAHAYAK_HOME/graph``.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from app.core.errors import SahayakError
from app.core.net import free_port
from app.core.settings import get_settings

DATABASE = "sahayak"


def bolt_port(settings: Any) -> int:
    return urlparse(settings.neo4j_uri).port or 7687


def reachable(uri: str, user: str, password: str, database: str | None = None, timeout: float = 3.0) -> bool:
    """True when a Bolt server answers ``RETURN 1`` at ``uri``."""
    # neo4j is heavy: deferred so importing this module (``sahayak run``, tests) stays light.
    from neo4j import GraphDatabase
    from neo4j.exceptions import Neo4jError, ServiceUnavailable, SessionExpired

    try:
        with GraphDatabase.driver(uri, auth=(user, password), connection_timeout=timeout,
                                  max_transaction_retry_time=0) as drv:
            with drv.session(database=database) as s:
                return s.run("RETURN 1 AS ok").single()["ok"] == 1
    except (ServiceUnavailable, SessionExpired, Neo4jError, OSError, ValueError):
        return False


@dataclass
class GraphServer:
    """A running graph server (our child process, or an external one we found)."""

    uri: str
    user: str
    password: str
    database: str | None
    process: subprocess.Popen | None = None
    log_path: Path | None = None

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
        p = self.process
        if p is None or p.poll() is not None:
            return
        try:
            p.stdin.close()  # the child stops its server cleanly when its stdin closes
        except (OSError, AttributeError):
            pass
        for action in (None, p.terminate, p.kill):
            if action is not None:
                action()
            try:
                p.wait(timeout if action is None else 10)
                return
            except subprocess.TimeoutExpired:
                continue

    def __enter__(self) -> "GraphServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def start(settings: Any = None, *, data_dir: Path | None = None, port: int | None = None,
          http_port: int | None = None, timeout: float = 120.0, reuse: bool = True) -> GraphServer:
    """Start the embedded Bolt server as a child process and wait until it answers.

    With ``reuse`` (default) an already reachable server at ``settings.neo4j_uri`` is used
    as is (e.g. a real Neo4j, or one started by another command). Raises SahayakError with
    the server log's tail when it does not come up within ``timeout`` seconds.
    """
    if settings is None:
        settings = get_settings()
    port = port or bolt_port(settings)
    uri = f"bolt://127.0.0.1:{port}"
    user, password = settings.neo4j_user, settings.neo4j_password
    if reuse and reachable(uri, user, password, settings.neo4j_database):
        return GraphServer(uri, user, password, settings.neo4j_database)
    data_dir = Path(data_dir or Path(settings.home) / "graph")
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "server.log"
    http_port = http_port or free_port()
    cmd = [sys.executable, "-m", "provenance.graph_server", "--root", str(data_dir.resolve()),
           "--bolt-port", str(port), "--http-port", str(http_port), "--until-stdin-eof"]
    env = dict(os.environ, SAHAYAK_GRAPH_PASSWORD=password)
    root = Path(__file__).resolve().parents[1]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.PIPE, env=env,
                                cwd=str(root), start_new_session=True)
    server = GraphServer(uri, user, password, settings.neo4j_database, proc, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        if reachable(uri, user, password, settings.neo4j_database, timeout=2.0):
            return server
        time.sleep(0.5)
    server.stop()
    tail = log_path.read_text(errors="replace")[-1500:] if log_path.exists() else ""
    raise SahayakError(f"graph server did not start on {uri} within {timeout:.0f}s; log {log_path}: "
                       + " | ".join(tail.strip().splitlines()[-5:]))


def serve(root: Path, bolt: int, http: int, password: str, heap: str = "512m", until_stdin_eof: bool = False) -> None:
    """Run the ArcadeDB server with the Bolt plugin in this process until SIGINT/SIGTERM, or,
    as a child of :func:`start`, until its stdin closes (so it never outlives its parent)."""
    try:  # the JVM bridge, needed only in the server child; a missing package gets a clear message
        from arcadedb_embedded.server import ArcadeDBServer
    except ImportError as exc:
        raise SahayakError("the graph server needs the PyPI package 'arcadedb-embedded'") from exc
    server = ArcadeDBServer(
        root_path=str(root), root_password=password,
        config={"host": "127.0.0.1", "http_port": http,
                "server_plugins": "Bolt:com.arcadedb.bolt.BoltProtocolPlugin", "bolt_port": bolt},
        jvm_kwargs={"heap_size": heap},
    )
    server.start()
    try:
        server.create_database(DATABASE)  # idempotent: opens it when it exists
    except Exception:  # noqa: BLE001 - exists already on restart
        pass
    print(f"graph server ready on bolt://127.0.0.1:{bolt} (http {http}) data {root}", flush=True)
    done = threading.Event()
    if until_stdin_eof:
        def watch() -> None:
            while sys.stdin.buffer.read(1):
                pass
            done.set()

        threading.Thread(target=watch, daemon=True).start()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    while not done.wait(0.5):  # a timed wait, so signal handlers get to run
        pass
    server.stop()
    print("graph server stopped", flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Sahayak embedded Bolt graph server (ArcadeDB)")
    ap.add_argument("--root", required=True)
    ap.add_argument("--bolt-port", type=int, default=7687)
    ap.add_argument("--http-port", type=int, default=2480)
    ap.add_argument("--heap", default=os.environ.get("SAHAYAK_GRAPH_HEAP", "512m"))
    ap.add_argument("--until-stdin-eof", action="store_true", help="stop when stdin closes (child mode)")
    a = ap.parse_args(argv)
    password = os.environ.get("SAHAYAK_GRAPH_PASSWORD", "sahayak-graph")
    serve(Path(a.root), a.bolt_port, a.http_port, password, a.heap, a.until_stdin_eof)


if __name__ == "__main__":
    main()
