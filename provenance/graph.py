"""Import the verified provenance log into a Neo4j-compatible graph over Bolt.

Nodes: Dataset, Model, Turn (an inference: also labelled ``Inference``; keeps ``turn_id`` as
``id``), Training, Passage, Document, Session, Agent, Event. The seed's vocabulary is kept beside
Sahayak's own: ``Dataset{hash, path, description, timestamp}``, ``Model{name, commit,
hyperparameters, environment, timestamp}``, ``Inference{id, input, output, timestamp}``.
Relations: (Dataset)-[:USED_IN]->(Model), (Model)-[:GENERATED]->(Turn),
(Training)-[:USED]->(Dataset), (Model)-[:WAS_GENERATED_BY]->(Training),
(Training)-[:ASSOCIATED_WITH]->(Agent), (Model)-[:ATTRIBUTED_TO]->(Agent),
(Dataset)-[:DERIVED_FROM]->(Event) (a dataset exported from staff intent corrections),
(Turn)-[:RETRIEVED {rank, score}]->(Passage)-[:PART_OF]->(Document),
(Turn)-[:HANDLED_BY]->(Agent), (Turn|Event)-[:IN_SESSION]->(Session), (Turn)-[:NEXT]->(Turn).

Every envelope is verified (signature by a trusted key, hash, chain continuing the cursor)
before it is imported; the import stops at the first bad line. Writes are batched
``UNWIND … MERGE`` in one transaction per batch, so re-importing is idempotent. The cursor
(``provenance/graph-cursor.json``) only moves after a batch commits: a graph outage loses
nothing, and the next run catches up. The Cypher sticks to what Neo4j and ArcadeDB share.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

from app.core.errors import SahayakError
from app.core.fsutil import write_atomic
from app.core.settings import get_settings
from provenance.canonical import SEED_SCHEMA_VERSION, b64d, sha256_hex
from provenance.checks import validate_seed_envelope
# The write half (records → rows → Cypher); re-exported because the benchmark and importers name it here.
from provenance.graph_rows import Rows, add_record, model_id, write_rows, write_rows_naive
from provenance.keys import load_public_pem, verify_signature
from provenance.log import list_segments, read_lines
from provenance.records import GENESIS_HASH
from provenance.verify import trusted_keys

log = logging.getLogger(__name__)

LABELS = ("Dataset", "Model", "Turn", "Training", "Passage", "Document", "Session", "Agent", "Event")
RELATIONS = ("USED_IN", "GENERATED", "USED", "DERIVED_FROM", "WAS_GENERATED_BY", "ASSOCIATED_WITH", "ATTRIBUTED_TO", "RETRIEVED",
             "HANDLED_BY", "IN_SESSION", "NEXT", "PART_OF")
CURSOR_NAME = "graph-cursor.json"


class GraphUnavailable(SahayakError):
    """The graph server cannot be reached; nothing was imported and the cursor did not move."""


class LogVerificationError(SahayakError):
    """A line failed verification; the importer refuses to import it or anything after it."""


def driver(settings: Any, timeout: float = 5.0):
    """A neo4j driver for ``settings.neo4j_uri`` (caller closes it).

    ``timeout`` bounds connecting and waiting for a pooled connection; it cannot bound a read
    from a server that accepted the connection and then froze (see ``provenance.queries._within``)."""
    from neo4j import GraphDatabase  # heavy: deferred so commands that never touch the graph stay light

    return GraphDatabase.driver(settings.neo4j_uri, auth=(settings.neo4j_user, settings.graph_secret),
                                connection_timeout=timeout, connection_acquisition_timeout=timeout,
                                max_transaction_retry_time=min(2.0, timeout))


def ensure_schema(session: Any) -> None:
    """Uniqueness constraints on every node key (idempotent)."""
    for label in LABELS:
        session.run(f"CREATE CONSTRAINT {label.lower()}_id IF NOT EXISTS FOR (n:{label}) REQUIRE n.id IS UNIQUE").consume()


# ---------------------------------------------------------------------------------------
# cursor and verified reading
# ---------------------------------------------------------------------------------------
@dataclass
class Cursor:
    segment: str | None = None
    offset: int = 0
    line: int = 0
    next_seq: int = 0
    last_hash: str = GENESIS_HASH
    sessions: dict[str, list] = field(default_factory=dict)
    learned_keys: dict[str, str] = field(default_factory=dict)  # key id -> PEM from rotation events
    imported: int = 0

    @classmethod
    def load(cls, path: Path) -> "Cursor":
        if not path.exists():
            return cls()
        return cls(**json.loads(path.read_text()))

    def save(self, path: Path) -> None:
        # Bound the session map: only recent sessions can still get a NEXT link.
        if len(self.sessions) > 20000:
            keep = sorted(self.sessions.items(), key=lambda kv: kv[1][1])[-10000:]
            self.sessions = dict(keep)
        write_atomic(path, json.dumps(self.__dict__, sort_keys=True))


def iter_verified(folder: Path, cur: Cursor, keys: dict[str, Any]) -> Iterator[tuple[dict, dict, str, int, int, str]]:
    """Yield (record, inner, segment, end_offset, line, hash) for each verified line after the cursor.

    Stops quietly at an unterminated last line (a record still being written, or a torn
    tail that the writer will acknowledge in the next segment)."""
    segs = list_segments(folder)
    names = [s.name for s in segs]
    start = names.index(cur.segment) if cur.segment in names else 0
    last_hash, seq = cur.last_hash, cur.next_seq
    for i, seg in enumerate(segs[start:], start=start):
        off, first_line = (cur.offset, cur.line + 1) if seg.name == cur.segment else (0, 1)
        for line in read_lines(seg, off, first_line):
            if not line.complete:
                break  # unfinished or torn: never imported
            try:
                env = json.loads(line.raw)
                inner = json.loads(env["signed_data"])
            except (ValueError, KeyError, TypeError) as exc:
                if line.end == seg.stat().st_size and i < len(segs) - 1:
                    break  # a torn tail acknowledged by the next segment
                raise LogVerificationError(f"{seg.name}:{line.number}: unreadable envelope ({exc})") from exc
            data = env["signed_data"].encode("utf-8")
            key = keys.get(inner.get("key_id"))
            if key is None or not verify_signature(key, data, b64d(env["signature"])):
                raise LogVerificationError(f"{seg.name}:{line.number}: signature does not verify; import stopped")
            if inner.get("prev_hash") != last_hash or inner.get("seq") != seq:
                raise LogVerificationError(f"{seg.name}:{line.number}: hash chain broken; import stopped")
            rec = inner["record"]
            if rec.get("type") == "event" and rec.get("kind") == "key_rotation":
                keys[rec["new_key_id"]] = load_public_pem(rec["new_public_pem"])
                cur.learned_keys[rec["new_key_id"]] = rec["new_public_pem"]
            last_hash, seq = sha256_hex(data), seq + 1
            yield rec, inner, seg.name, line.end, line.number, last_hash


@dataclass
class _Batch:
    """Verified records turned into graph rows, and where the cursor goes once they commit."""

    rows: Rows
    count: int
    segment: str
    end: int
    line: int
    next_seq: int
    last_hash: str
    sessions: dict[str, list]
    learned_keys: dict[str, str]


class _BatchReader:
    """Reads, verifies and converts the next batch on a thread while the current one is written.

    The server's work and the signature checks then overlap (the driver waits on the socket
    without the GIL). Batches come out in log order; a verification error comes out after
    the batches before it, so the import stops exactly where the sequential one did."""

    _END = object()

    def __init__(self, folder: Path, cur: Cursor, keys: dict[str, Any], batch_size: int, ahead: int = 2) -> None:
        self._args = (folder, cur, keys, batch_size)
        self._queue: queue.Queue = queue.Queue(maxsize=ahead)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="provenance-graph-read", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        folder, cur, keys, size = self._args
        # A private copy: the importing thread saves the real cursor while this one reads ahead.
        mine = replace(cur, sessions={}, learned_keys=dict(cur.learned_keys))
        sessions = {k: list(v) for k, v in cur.sessions.items()}
        rows, count = Rows(), 0
        try:
            for rec, inner, seg, end, line, h in iter_verified(folder, mine, keys):
                add_record(rows, rec, inner["seq"], sessions)
                count += 1
                if count >= size:
                    batch = _Batch(rows, count, seg, end, line, inner["seq"] + 1, h,
                                   {k: list(v) for k, v in sessions.items()}, dict(mine.learned_keys))
                    if not self._put(batch):
                        return
                    rows, count = Rows(), 0
            if count:
                self._put(_Batch(rows, count, seg, end, line, inner["seq"] + 1, h, sessions, dict(mine.learned_keys)))
            self._put(self._END)
        except BaseException as exc:  # noqa: BLE001 - handed to the importing thread, raised there
            self._put(exc)

    def __iter__(self) -> Iterator[_Batch]:
        while True:
            item = self._queue.get()
            if item is self._END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)


# ---------------------------------------------------------------------------------------
# importer
# ---------------------------------------------------------------------------------------
class Importer:
    """Imports new log records into the graph in verified, idempotent batches."""

    def __init__(self, settings: Any = None, folder: Path | None = None, batch_size: int = 500) -> None:
        if settings is None:
            settings = get_settings()
        self.settings = settings
        self.folder = Path(folder or settings.provenance_dir)
        self.cursor_path = self.folder / CURSOR_NAME
        self.batch_size = batch_size
        self._driver = None
        self._schema_done = False

    def _keys(self, cur: Cursor) -> dict[str, Any]:
        keys = trusted_keys(self.settings)
        for kid, pem in cur.learned_keys.items():
            keys.setdefault(kid, load_public_pem(pem))
        return keys

    def _drv(self):
        if self._driver is None:
            self._driver = driver(self.settings)
        return self._driver

    def close(self) -> None:
        if self._driver is not None:
            self._driver.close()
            self._driver = None

    def reset_cursor(self) -> None:
        """Forget how far the import got (the next run re-imports everything; MERGE keeps it idempotent)."""
        if self.cursor_path.exists():
            self.cursor_path.unlink()

    def run_once(self, progress: Any = None) -> int:
        """Import everything new; returns the number of records imported.

        Raises GraphUnavailable (cursor unchanged) when the server is down, and
        LogVerificationError when a line does not verify (records before it are kept)."""
        # neo4j is heavy: imported where the graph is used, not when this module is.
        from neo4j.exceptions import DatabaseError, ServiceUnavailable, SessionExpired, TransientError

        cur = Cursor.load(self.cursor_path)
        keys = self._keys(cur)
        total = 0
        reader = _BatchReader(self.folder, cur, keys, self.batch_size)
        try:
            with self._drv().session(database=self.settings.neo4j_database) as session:
                if not self._schema_done:
                    ensure_schema(session)
                    self._schema_done = True
                reader.start()
                for batch in reader:
                    total += self._commit(session, cur, batch)
                    if progress:
                        progress(total)
        except (ServiceUnavailable, SessionExpired, TransientError, DatabaseError, OSError) as exc:
            # DatabaseError: ArcadeDB reports a server shutting down mid-statement this way.
            self.close()  # a fresh driver after the outage
            self._schema_done = False
            raise GraphUnavailable(f"graph server at {self.settings.neo4j_uri} unavailable: {exc}; "
                                   f"{total} records imported before it went away") from exc
        finally:
            reader.stop()
        return total

    def _commit(self, session: Any, cur: Cursor, batch: "_Batch") -> int:
        session.execute_write(write_rows, batch.rows)
        # Only now, with the transaction committed, does the cursor move.
        cur.segment, cur.offset, cur.line = batch.segment, batch.end, batch.line
        cur.next_seq = batch.next_seq
        cur.last_hash = batch.last_hash
        cur.sessions = batch.sessions
        cur.learned_keys = batch.learned_keys
        cur.imported += batch.count
        cur.save(self.cursor_path)
        return batch.count

    def counts(self) -> dict[str, int]:
        """Nodes per label and relationships per type."""
        out: dict[str, int] = {}
        with self._drv().session(database=self.settings.neo4j_database) as s:
            for label in LABELS:
                out[label] = s.run(f"MATCH (n:{label}) RETURN count(n) AS c").single()["c"]
            for rel in RELATIONS:
                out[rel] = s.run(f"MATCH ()-[r:{rel}]->() RETURN count(r) AS c").single()["c"]
        return out


# ---------------------------------------------------------------------------------------
# seed (schema 1.1) logs
# ---------------------------------------------------------------------------------------
def seed_record(rec: dict[str, Any], signed_data: str) -> dict[str, Any] | None:
    """A seed 1.1 record in this importer's (2.0) shape; None for a type the graph has no node for.

    Our reading of the seed's records (field aliases accepted): ``dataset {path, hash|sha256,
    description, timestamp}``, ``model {name, version?, commit|git_commit, hyperparameters,
    environment, metrics?, datasets|dataset_hashes, timestamp}``, ``inference {id?, model,
    input, output, timestamp}``. An inference without an id is named by its signed bytes' hash.
    """
    kind = rec.get("type")
    base = {"record_id": rec.get("record_id") or sha256_hex(signed_data.encode("utf-8"))[:32],
            "timestamp": rec.get("timestamp"), "schema_version": SEED_SCHEMA_VERSION}
    if kind == "dataset":
        sha = rec.get("hash") or rec.get("sha256")
        return None if not sha else base | {"type": "dataset", "path": rec.get("path"), "sha256": sha,
                                            "description": rec.get("description")}
    if kind == "model" and rec.get("name"):
        version = str(rec.get("version") or "")
        return base | {"type": "model", "name": rec["name"], "version": version,
                       "model_id": model_id(rec["name"], version) if version else rec["name"],
                       "hyperparameters": rec.get("hyperparameters") or {}, "metrics": rec.get("metrics") or {},
                       "git_commit": rec.get("commit") or rec.get("git_commit"),
                       "environment": rec.get("environment") or {}, "origin": "seed-1.1",
                       "dataset_hashes": list(rec.get("dataset_hashes") or rec.get("datasets") or [])}
    if kind == "inference":
        model = rec.get("model") or rec.get("model_id") or rec.get("model_name")
        return base | {"type": "turn", "turn_id": str(rec.get("id") or rec.get("inference_id") or base["record_id"]),
                       "input": rec.get("input"), "reply": rec.get("output"), "intent": rec.get("intent"),
                       "confidence": rec.get("confidence"), "handler": None, "outcome": None, "state": None,
                       "model_versions": {"model": str(model)} if model else {}}
    return None


def import_seed_log(path: str | Path, public_keys: list[Any], settings: Any = None,
                    redactor: Any = None) -> dict[str, int]:
    """Verify a seed schema 1.1 log line by line and import it (idempotent; no cursor).

    Every line must be a 1.1 envelope whose RSA-PSS signature verifies with one of
    ``public_keys``; the first line that does not stops the import before anything is written
    (LogVerificationError names it). Seed logs have no chain, so there is nothing else to check.
    ``redactor`` (the composition root passes ``privacy.redact.redact``) redacts the inference
    input and output on the way in, as the tracker does for Sahayak's own turns.
    """
    settings = settings or get_settings()
    if not public_keys:
        raise SahayakError("a seed 1.1 log needs the seed's RSA public key (--seed-pubkey)")
    rows, sessions, n, kinds = Rows(), {}, 0, {"dataset": 0, "model": 0, "inference": 0, "skipped": 0}
    p = Path(path)
    for line in read_lines(p, 0, 1):
        if not line.raw.strip():
            continue
        # An unterminated last line is imported only if it verifies (a torn one cannot).
        problems = next((pr for pr in ([validate_seed_envelope(line.raw.decode("utf-8", "replace"), k)
                                        for k in public_keys]) if not pr), None)
        if problems is None:
            first = validate_seed_envelope(line.raw.decode("utf-8", "replace"), public_keys[0])
            raise LogVerificationError(f"{p.name}:{line.number}: seed 1.1 envelope does not verify "
                                       f"({'; '.join(first)}); import stopped")
        sd = json.loads(line.raw)["signed_data"]
        rec = json.loads(sd)
        mapped = seed_record(rec, sd)
        if mapped is None:
            kinds["skipped"] += 1
            continue
        kinds[rec["type"]] += 1
        if mapped["type"] == "turn" and redactor is not None:
            mapped["input"] = redactor(mapped["input"] or "")
            mapped["reply"] = redactor(mapped["reply"] or "")
        n += 1
        add_record(rows, mapped, line.number, sessions)
    with driver(settings) as drv, drv.session(database=settings.neo4j_database) as session:
        ensure_schema(session)
        session.execute_write(write_rows, rows)
    return {"imported": n, **kinds}


class ContinuousImporter:
    """Background thread that keeps the graph caught up with the log, riding out outages."""

    def __init__(self, settings: Any = None, interval: float = 2.0) -> None:
        self.importer = Importer(settings)
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None
        self.imported = 0

    def start(self) -> "ContinuousImporter":
        self._thread = threading.Thread(target=self._run, name="provenance-graph-import", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        backoff = self.interval
        while not self._stop.is_set():
            try:
                self.imported += self.importer.run_once()
                self.last_error = None
                backoff = self.interval
            except GraphUnavailable as exc:
                self.last_error = str(exc)
                backoff = min(backoff * 2, 30.0)  # the server is down: wait longer, lose nothing
            except LogVerificationError as exc:
                self.last_error = str(exc)
                log.error("graph import stopped: %s", exc)
                backoff = 30.0
            except Exception as exc:  # noqa: BLE001 - the thread must outlive any one failure
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("graph import failed, will retry: %s", self.last_error)
                self.importer.close()
                backoff = min(backoff * 2, 30.0)
            self._stop.wait(backoff)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)
        self.importer.close()
