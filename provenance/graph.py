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
from provenance.canonical import SEED_SCHEMA_VERSION, b64d, sha256_hex, stable_json
from provenance.checks import validate_seed_envelope
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


def _js(obj: Any) -> str:
    return stable_json(obj)


# ---------------------------------------------------------------------------------------
# records -> rows
# ---------------------------------------------------------------------------------------
@dataclass
class Rows:
    datasets: list[dict] = field(default_factory=list)
    models: list[dict] = field(default_factory=list)
    used_in: list[dict] = field(default_factory=list)
    trainings: list[dict] = field(default_factory=list)
    derived: list[dict] = field(default_factory=list)
    turns: list[dict] = field(default_factory=list)
    generated: list[dict] = field(default_factory=list)
    retrieved: list[dict] = field(default_factory=list)
    next: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.datasets) + len(self.models) + len(self.trainings) + len(self.turns) + len(self.events)


def model_id(name: str, version: str) -> str:
    """A model's graph id. Turns name models by the strings in ``model_versions``, so a trainer
    should report ``model_version = f"{name}@{version}"`` for the two to meet."""
    return f"{name}@{version}"


def _add_dataset(rows: Rows, rec: dict[str, Any], base: dict[str, Any]) -> None:
    rows.datasets.append(base | {"id": rec["sha256"], "path": rec.get("path"), "description": rec.get("description")})
    # A dataset made from staff corrections (intents export-feedback) names their records.
    rows.derived += [{"d": rec["sha256"], "e": e} for e in rec.get("derived_from") or []]


def _add_model(rows: Rows, rec: dict[str, Any], base: dict[str, Any]) -> None:
    mid = rec.get("model_id") or model_id(rec["name"], rec["version"])
    agent = rec.get("agent")
    rows.models.append(base | {
        "id": mid, "name": rec["name"], "version": rec["version"], "hyperparameters": _js(rec.get("hyperparameters")),
        "metrics": _js(rec.get("metrics")), "git_commit": rec.get("git_commit") or None,
        "environment": _js(rec.get("environment")), "dataset_count": len(rec.get("dataset_hashes") or []),
        # Records before training recorded itself carry no origin: they were written at first use.
        "origin": rec.get("origin") or "registered_at_first_use", "training_id": rec.get("training_id"),
        "agent": agent if isinstance(agent, str) else None, "trained_at": rec.get("trained_at"),
        "git_dirty": rec.get("git_dirty"), "description": rec.get("description"),
    })
    rows.used_in += [{"d": h, "m": mid} for h in rec.get("dataset_hashes") or []]


def _add_training(rows: Rows, rec: dict[str, Any], base: dict[str, Any]) -> None:
    agent = rec.get("agent") or {}
    rows.trainings.append(base | {
        "id": rec["training_id"], "model": rec["model_id"], "started_at": rec.get("started_at"),
        "ended_at": rec.get("ended_at"), "command": rec.get("command"), "git_commit": rec.get("git_commit"),
        "agent": agent.get("id"), "agent_name": agent.get("name"), "agent_kind": agent.get("kind"),
        "datasets": list(rec.get("dataset_hashes") or []),
    })


def _add_turn(rows: Rows, rec: dict[str, Any], base: dict[str, Any], seq: int, sessions: dict[str, list]) -> None:
    tid = rec["turn_id"]
    rows.turns.append(base | {
        "id": tid, "session": rec.get("session"), "user": rec.get("user"), "channel": rec.get("channel"),
        "input": rec.get("input"), "reply": rec.get("reply"), "intent": rec.get("intent"),
        "confidence": rec.get("confidence"), "handler": rec.get("handler") or "none", "outcome": rec.get("outcome"),
        "state": rec.get("state"), "latency_ms": rec.get("latency_ms"), "prompt_hash": rec.get("prompt_hash"),
        "entities": _js(rec.get("entities")), "scoring_request_id": rec.get("scoring_request_id"),
        "model_versions": _js(rec.get("model_versions")),
    })
    for name, version in (rec.get("model_versions") or {}).items():
        if version:
            rows.generated.append({"m": str(version), "name": str(name), "t": tid})
    for rank, p in enumerate(rec.get("passages") or []):
        scores = p.get("scores") or {}
        score = next((scores[k] for k in ("rerank", "fused", "rrf", "dense", "bm25", "score") if k in scores), None)
        cid = p.get("chunk_id") or p.get("chunk_hash")
        if cid is None:
            continue
        rows.retrieved.append({"t": tid, "p": cid, "doc": p.get("doc_id") or "unknown", "hash": p.get("chunk_hash"),
                               "title": p.get("title"), "rank": p.get("rank", rank + 1), "score": score,
                               "scores": _js(scores)})
    sess = rec.get("session")
    if sess:
        prev = sessions.get(sess)
        if prev and prev[0] != tid:
            rows.next.append({"a": prev[0], "b": tid})
        sessions[sess] = [tid, seq]


def _add_event(rows: Rows, rec: dict[str, Any], base: dict[str, Any]) -> None:
    detail = {k: v for k, v in rec.items() if k not in ("record_id", "type", "timestamp", "schema_version", "kind",
                                                         "session", "user", "turn_id", "new_public_pem")}
    rows.events.append(base | {"id": rec["record_id"], "kind": rec.get("kind"), "session": rec.get("session"),
                               "user": rec.get("user"), "turn_id": rec.get("turn_id"), "detail": _js(detail),
                               "staff": detail.get("staff")})


def add_record(rows: Rows, rec: dict[str, Any], seq: int, sessions: dict[str, list]) -> None:
    """Turn one verified record into graph rows (``sessions`` tracks each session's last turn for NEXT)."""
    kind = rec.get("type")
    base = {"record_id": rec["record_id"], "seq": seq, "timestamp": rec.get("timestamp")}
    if kind == "dataset":
        _add_dataset(rows, rec, base)
    elif kind == "model":
        _add_model(rows, rec, base)
    elif kind == "training":
        _add_training(rows, rec, base)
    elif kind == "turn":
        _add_turn(rows, rec, base, seq, sessions)
    elif kind == "event":
        _add_event(rows, rec, base)


# Shared nodes (few distinct values per batch) are MERGEd; turns, the bulk, are looked up
# first and only the new ones are CREATEd together with their relationships, in the same
# transaction. So "the turn exists" implies "its links exist", re-imports change nothing,
# and the expensive MERGE is never run per turn (see bench/provenance.py for the difference).
CYPHER = {
    "datasets": """UNWIND $rows AS r MERGE (d:Dataset {id: r.id})
        SET d.hash = r.id, d.path = r.path, d.description = r.description, d.record_id = r.record_id,
            d.timestamp = r.timestamp""",
    # commit/timestamp are the seed's names for git_commit and the training's end (else the record's time).
    "models": """UNWIND $rows AS r MERGE (m:Model {id: r.id})
        SET m.name = r.name, m.version = r.version, m.hyperparameters = r.hyperparameters, m.metrics = r.metrics,
            m.git_commit = r.git_commit, m.commit = r.git_commit, m.environment = r.environment,
            m.record_id = r.record_id, m.timestamp = coalesce(r.trained_at, r.timestamp),
            m.recorded_at = r.timestamp, m.dataset_count = r.dataset_count, m.recorded = true,
            m.origin = r.origin, m.training_id = r.training_id, m.agent = r.agent, m.git_dirty = r.git_dirty,
            m.description = r.description""",
    "used_in": """UNWIND $rows AS r MERGE (d:Dataset {id: r.d}) MERGE (m:Model {id: r.m}) MERGE (d)-[:USED_IN]->(m)""",
    "trainings": """UNWIND $rows AS r MERGE (a:Training {id: r.id})
        SET a.model = r.model, a.started_at = r.started_at, a.ended_at = r.ended_at, a.command = r.command,
            a.git_commit = r.git_commit, a.agent = r.agent, a.record_id = r.record_id, a.timestamp = r.timestamp
        MERGE (m:Model {id: r.model}) MERGE (m)-[:WAS_GENERATED_BY]->(a)""",
    "training_agents": """UNWIND $rows AS r MATCH (a:Training {id: r.id}) MATCH (m:Model {id: r.model})
        MERGE (g:Agent {id: r.agent}) SET g.kind = r.agent_kind, g.name = r.agent_name
        MERGE (a)-[:ASSOCIATED_WITH]->(g) MERGE (m)-[:ATTRIBUTED_TO]->(g)""",
    "derived": """UNWIND $rows AS r MATCH (d:Dataset {id: r.d}) MERGE (e:Event {id: r.e}) MERGE (d)-[:DERIVED_FROM]->(e)""",
    "training_used": """UNWIND $rows AS r MATCH (a:Training {id: r.t}) MERGE (d:Dataset {id: r.d})
        MERGE (a)-[:USED]->(d)""",
    "sessions": """UNWIND $rows AS r MERGE (s:Session {id: r.id}) SET s.user = r.user""",
    "agents": """UNWIND $rows AS r MERGE (a:Agent {id: r.id}) SET a.kind = r.kind, a.name = r.name""",
    # A model only named by turns (no record): its name is its id, so the seed's queries show it.
    "turn_models": """UNWIND $rows AS r MERGE (m:Model {id: r.id}) SET m.role = r.name, m.name = coalesce(m.name, r.id)""",
    "passages": """UNWIND $rows AS r MERGE (p:Passage {id: r.p}) SET p.doc_id = r.doc, p.chunk_hash = r.hash
        MERGE (d:Document {id: r.doc}) SET d.title = coalesce(r.title, d.title)
        MERGE (p)-[:PART_OF]->(d)""",
    "existing_turns": """UNWIND $ids AS id MATCH (t:Turn {id: id}) RETURN t.id AS id""",
    "turns": """UNWIND $rows AS r CREATE (t:Turn:Inference {id: r.id, record_id: r.record_id, seq: r.seq,
            timestamp: r.timestamp, session: r.session, user: r.user, channel: r.channel, input: r.input,
            reply: r.reply, output: r.reply, intent: r.intent, confidence: r.confidence, handler: r.handler, outcome: r.outcome,
            state: r.state, latency_ms: r.latency_ms, prompt_hash: r.prompt_hash, entities: r.entities,
            scoring_request_id: r.scoring_request_id, model_versions: r.model_versions})
        WITH t, r MATCH (s:Session {id: r.session}) CREATE (t)-[:IN_SESSION]->(s)
        WITH t, r MATCH (a:Agent {id: 'handler:' + r.handler}) CREATE (t)-[:HANDLED_BY]->(a)""",
    "generated": """UNWIND $rows AS r MATCH (m:Model {id: r.m}) MATCH (t:Turn {id: r.t}) CREATE (m)-[:GENERATED]->(t)""",
    "retrieved": """UNWIND $rows AS r MATCH (p:Passage {id: r.p}) MATCH (t:Turn {id: r.t})
        CREATE (t)-[:RETRIEVED {rank: r.rank, score: r.score, scores: r.scores}]->(p)""",
    # Only ever run for turns created in the same transaction: no NEXT can point at them yet.
    "next": """UNWIND $rows AS r MATCH (a:Turn {id: r.a}) MATCH (b:Turn {id: r.b}) CREATE (a)-[:NEXT]->(b)""",
    "events": """UNWIND $rows AS r MERGE (e:Event {id: r.id})
        SET e.kind = r.kind, e.record_id = r.record_id, e.seq = r.seq, e.timestamp = r.timestamp,
            e.session = r.session, e.user = r.user, e.turn_id = r.turn_id, e.detail = r.detail, e.staff = r.staff""",
    "event_sessions": """UNWIND $rows AS r MATCH (e:Event {id: r.id}) MERGE (s:Session {id: r.session})
        MERGE (e)-[:IN_SESSION]->(s)""",
    "event_staff": """UNWIND $rows AS r MATCH (e:Event {id: r.id}) MERGE (a:Agent {id: 'staff:' + r.staff})
        SET a.kind = 'staff', a.name = r.staff MERGE (e)-[:HANDLED_BY]->(a)""",
}

# The naive form (one MERGE per node and relation, per turn, no existence check): kept as the
# benchmark baseline for write_rows (bench/provenance.py).
NAIVE_TURN_MERGE = [
    """UNWIND $turns AS r MERGE (t:Turn {id: r.id})
        SET t.record_id = r.record_id, t.seq = r.seq, t.timestamp = r.timestamp, t.session = r.session,
            t.user = r.user, t.channel = r.channel, t.input = r.input, t.reply = r.reply, t.intent = r.intent,
            t.confidence = r.confidence, t.handler = r.handler, t.outcome = r.outcome, t.state = r.state,
            t.latency_ms = r.latency_ms, t.prompt_hash = r.prompt_hash, t.entities = r.entities,
            t.scoring_request_id = r.scoring_request_id, t.model_versions = r.model_versions
        MERGE (s:Session {id: r.session}) MERGE (t)-[:IN_SESSION]->(s)
        MERGE (a:Agent {id: 'handler:' + r.handler}) MERGE (t)-[:HANDLED_BY]->(a)""",
    """UNWIND $generated AS r MERGE (m:Model {id: r.m}) WITH r, m MATCH (t:Turn {id: r.t}) MERGE (m)-[:GENERATED]->(t)""",
    """UNWIND $retrieved AS r MERGE (p:Passage {id: r.p}) MERGE (d:Document {id: r.doc}) MERGE (p)-[:PART_OF]->(d)
        WITH r, p MATCH (t:Turn {id: r.t}) MERGE (t)-[x:RETRIEVED]->(p) SET x.rank = r.rank, x.score = r.score""",
    """UNWIND $next AS r MATCH (a:Turn {id: r.a}) MATCH (b:Turn {id: r.b}) MERGE (a)-[:NEXT]->(b)""",
]


def write_rows_naive(tx: Any, rows: Rows) -> None:
    """Baseline writer: every node and relation MERGEd row by row."""
    params = {"turns": rows.turns, "generated": rows.generated, "retrieved": rows.retrieved, "next": rows.next}
    for q in NAIVE_TURN_MERGE:
        key = q.split("$", 1)[1].split()[0]
        if params[key]:
            tx.run(q, **{key: params[key]}).consume()


def _distinct(rows: list[dict], key: str) -> list[dict]:
    seen: dict[Any, dict] = {}
    for r in rows:
        seen.setdefault(r[key], r)
    return list(seen.values())


def write_rows(tx: Any, rows: Rows) -> None:
    """Write one batch inside one transaction (shared nodes first, then new turns and links).

    Each statement gets only the fields it uses: the driver packs every value in Python,
    and that packing is a large part of the client's time."""
    def run(name: str, data: list[dict]) -> None:
        if data:
            tx.run(CYPHER[name], rows=data).consume()

    run("datasets", rows.datasets)
    run("models", rows.models)
    run("used_in", rows.used_in)
    run("trainings", rows.trainings)
    run("derived", rows.derived)
    run("training_agents", [t for t in rows.trainings if t["agent"]])
    run("training_used", [{"t": t["id"], "d": h} for t in rows.trainings for h in t["datasets"]])
    turns = _distinct(rows.turns, "id")
    existing: set[str] = set()
    if turns:
        existing = {rec["id"] for rec in tx.run(CYPHER["existing_turns"], ids=[t["id"] for t in turns])}
    new = [t for t in turns if t["id"] not in existing]
    new_ids = {t["id"] for t in new}
    run("sessions", [{"id": k, "user": v["user"]} for k, v in {t["session"]: t for t in new}.items() if k])
    run("agents", [{"id": f"handler:{h}", "kind": "handler", "name": h} for h in sorted({t["handler"] for t in new})])
    gen = [g for g in rows.generated if g["t"] in new_ids]
    run("turn_models", [{"id": m, "name": g["name"]} for m, g in {g["m"]: g for g in gen}.items()])
    ret = [r for r in rows.retrieved if r["t"] in new_ids]
    run("passages", [{"p": r["p"], "doc": r["doc"], "hash": r["hash"], "title": r["title"]}
                     for r in _distinct(ret, "p")])
    run("turns", new)
    run("generated", [{"m": g["m"], "t": g["t"]} for g in gen])
    run("retrieved", [{"t": r["t"], "p": r["p"], "rank": r["rank"], "score": r["score"], "scores": r["scores"]}
                      for r in ret])
    run("next", list({(n["a"], n["b"]): n for n in rows.next if n["b"] in new_ids}.values()))
    run("events", rows.events)
    run("event_sessions", [e for e in rows.events if e["session"]])
    run("event_staff", [e for e in rows.events if e["staff"]])


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
