"""The embedded graph server: ArcadeDB (PyPI ``arcadedb-embedded``) with its Bolt plugin.

No Neo4j server can be installed here, but ArcadeDB speaks Bolt and openCypher, so the
official ``neo4j`` driver talks to it exactly as to Neo4j. The server is a JVM, so it runs
as a child process (``python -m provenance.graph_server``) that the CLI, ``sahayak run``
and the test suite start and stop through the launcher in :mod:`app.ops.graph`.

Hardening (issue 19): every listener binds 127.0.0.1; the server runs in ArcadeDB's
``production`` mode with Studio off (the importer and the console use Bolt only, so the HTTP API
listens on a random loopback port and nothing of ours calls it); the root password is the
install's random one (no default); its logs (``arcadedb.server.logsDirectory``, JVM crash files)
go under ``<root>/log`` and the process works in ``<root>``, so nothing is written into the
caller's folder; files are created owner-only (umask 077). Data lives under ``$SAHAYAK_HOME/graph``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from app.core.environment import private_umask
from app.core.errors import SahayakError
from app.core.settings import get_settings

DATABASE = "sahayak"


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


def serve(root: Path, bolt: int, http: int, password: str, heap: str = "512m", until_stdin_eof: bool = False) -> None:
    """Run the ArcadeDB server with the Bolt plugin in this process until SIGINT/SIGTERM, or,
    as a child of the launcher (:mod:`app.ops.graph`), until its stdin closes (so it never
    outlives its parent)."""
    if not password:
        raise SahayakError("the graph server needs a root password (SAHAYAK_GRAPH_PASSWORD); there is no default")
    private_umask()
    root = Path(root).resolve()
    logs = root / "log"
    logs.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chdir(root)  # ArcadeDB resolves ./log (and other relative paths) against the working directory
    # Read when the JVM starts: crash files go under <root>/log, not ./log of whoever started us.
    os.environ.setdefault("ARCADEDB_JVM_ERROR_FILE", str(logs / "hs_err_pid%p.log"))
    try:  # the JVM bridge, needed only in the server child; a missing package gets a clear message
        from arcadedb_embedded.server import ArcadeDBServer
    except ImportError as exc:
        raise SahayakError("the graph server needs the PyPI package 'arcadedb-embedded'") from exc
    server = ArcadeDBServer(
        root_path=str(root), root_password=password,
        config={"host": "127.0.0.1", "http_port": http, "mode": "production", "studio_enabled": "false",
                "server_logsDirectory": str(logs),
                "server_plugins": "Bolt:com.arcadedb.bolt.BoltProtocolPlugin", "bolt_port": bolt,
                "bolt_host": "127.0.0.1"},
        jvm_kwargs={"heap_size": heap, "jvm_args": [f"-Darcadedb.server.logsDirectory={logs}"]},
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
    private_umask()
    ap = argparse.ArgumentParser(description="Sahayak embedded Bolt graph server (ArcadeDB)")
    ap.add_argument("--root", required=True)
    ap.add_argument("--bolt-port", type=int, default=7687)
    ap.add_argument("--http-port", type=int, default=2480)
    settings = get_settings()  # SAHAYAK_GRAPH_HEAP / SAHAYAK_GRAPH_PASSWORD when no flag is given
    ap.add_argument("--heap", default=settings.graph_heap)
    ap.add_argument("--password", default=None,
                    help="root password (the launcher passes it in SAHAYAK_GRAPH_PASSWORD, off the command line; "
                         "default: this install's random password under $SAHAYAK_HOME/keys)")
    ap.add_argument("--until-stdin-eof", action="store_true", help="stop when stdin closes (child mode)")
    a = ap.parse_args(argv)
    a.password = a.password or settings.graph_password or settings.graph_secret
    serve(Path(a.root), a.bolt_port, a.http_port, a.password, a.heap, a.until_stdin_eof)


if __name__ == "__main__":
    main()
