"""Provenance records → graph rows → batched Cypher: the write half of :mod:`provenance.graph`.

:func:`add_record` turns one verified record into rows (datasets, models, trainings, turns and
their links, events); :func:`write_rows` writes a batch in one transaction with ``UNWIND … MERGE``
(shared nodes first, then only the turns the graph does not hold yet), so re-importing is
idempotent. :func:`write_rows_naive` is the row-by-row baseline the benchmark compares with.
The Cypher sticks to what Neo4j and ArcadeDB share.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from provenance.canonical import stable_json

__all__ = ["CYPHER", "NAIVE_TURN_MERGE", "Rows", "add_record", "model_id", "write_rows", "write_rows_naive"]


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
