"""Staff audit queries over the provenance graph (a Cypher library + plain-dict functions).

The staff console and ``sahayak audit …`` call :class:`Audit`; every method returns plain
dicts/lists (JSON-ready). The Cypher uses only what both Neo4j 5 and ArcadeDB accept
(no pattern predicates in WHERE, no APOC): OPTIONAL MATCH + count/collect instead.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.core.errors import SahayakError
from app.core.settings import get_settings
from provenance.checks import Verification
from provenance.graph import GraphUnavailable, driver
from provenance.keys import pseudonym
from provenance.merkle import inclusion_proof, verify_inclusion
from provenance.verify import verify_log

# The seed's queries first, then the staff ones.
QUERIES: dict[str, str] = {
    "datasets": """MATCH (d:Dataset) RETURN d.id AS sha256, d.path AS path, d.description AS description,
        d.timestamp AS recorded_at ORDER BY d.timestamp""",
    "models": """MATCH (m:Model) WHERE m.recorded = true
        RETURN m.id AS model, m.name AS name, m.version AS version, m.hyperparameters AS hyperparameters,
        m.metrics AS metrics, m.git_commit AS git_commit, m.timestamp AS recorded_at ORDER BY m.timestamp""",
    "datasets_per_model": """MATCH (m:Model) OPTIONAL MATCH (d:Dataset)-[:USED_IN]->(m)
        RETURN m.id AS model, collect(d.id) AS datasets, collect(d.path) AS paths ORDER BY model""",
    "inferences": """MATCH (t:Turn) RETURN t.id AS turn_id, t.timestamp AS timestamp, t.session AS session,
        t.intent AS intent, t.confidence AS confidence, t.input AS input, t.reply AS output, t.outcome AS outcome
        ORDER BY t.seq DESC LIMIT $limit""",
    "lineage": """MATCH (d:Dataset)-[:USED_IN]->(m:Model)-[:GENERATED]->(t:Turn)
        RETURN d.id AS dataset, d.path AS dataset_path, m.id AS model, t.id AS turn_id, t.intent AS intent,
        t.timestamp AS timestamp ORDER BY t.seq DESC LIMIT $limit""",
    "multi_dataset_models": """MATCH (d:Dataset)-[:USED_IN]->(m:Model) WITH m, count(d) AS n, collect(d.path) AS paths
        WHERE n > 1 RETURN m.id AS model, n AS datasets, paths ORDER BY n DESC, model""",
    "models_without_datasets": """MATCH (m:Model) OPTIONAL MATCH (d:Dataset)-[:USED_IN]->(m)
        WITH m, count(d) AS n WHERE n = 0 RETURN m.id AS model, m.name AS name, coalesce(m.recorded, false) AS recorded
        ORDER BY model""",
    "session_timeline": """MATCH (t:Turn)-[:IN_SESSION]->(s:Session {id: $session})
        RETURN 'turn' AS kind, t.id AS id, t.seq AS seq, t.timestamp AS timestamp, t.intent AS intent,
        t.confidence AS confidence, t.handler AS handler, t.outcome AS outcome, t.input AS input, t.reply AS reply
        ORDER BY t.seq""",
    "session_events": """MATCH (e:Event)-[:IN_SESSION]->(s:Session {id: $session})
        RETURN 'event' AS kind, e.id AS id, e.seq AS seq, e.timestamp AS timestamp, e.kind AS event,
        e.detail AS detail ORDER BY e.seq""",
    "why_turn": """MATCH (t:Turn {id: $turn_id}) RETURN t.id AS turn_id, t.seq AS seq, t.record_id AS record_id,
        t.timestamp AS timestamp, t.session AS session, t.intent AS intent, t.confidence AS confidence,
        t.handler AS handler, t.outcome AS outcome, t.input AS input, t.reply AS reply,
        t.entities AS entities, t.prompt_hash AS prompt_hash, t.scoring_request_id AS scoring_request_id,
        t.model_versions AS model_versions""",
    "why_passages": """MATCH (t:Turn {id: $turn_id})-[r:RETRIEVED]->(p:Passage) OPTIONAL MATCH (p)-[:PART_OF]->(d:Document)
        RETURN p.id AS chunk_id, p.chunk_hash AS chunk_hash, d.id AS doc_id, d.title AS title, r.rank AS rank,
        r.score AS score, r.scores AS scores ORDER BY r.rank""",
    "why_models": """MATCH (m:Model)-[:GENERATED]->(t:Turn {id: $turn_id}) OPTIONAL MATCH (d:Dataset)-[:USED_IN]->(m)
        RETURN m.id AS model, m.role AS role, m.hyperparameters AS hyperparameters, m.git_commit AS git_commit,
        collect(d.id) AS datasets, collect(d.path) AS dataset_paths ORDER BY model""",
    "handoffs": """MATCH (e:Event) WHERE e.kind = 'handoff' OPTIONAL MATCH (e)-[:HANDLED_BY]->(a:Agent)
        RETURN e.id AS event_id, e.timestamp AS timestamp, e.session AS session, e.turn_id AS turn_id,
        a.name AS staff, e.detail AS detail ORDER BY e.seq DESC LIMIT $limit""",
    "low_confidence": """MATCH (t:Turn) WHERE t.confidence < $threshold
        RETURN t.id AS turn_id, t.timestamp AS timestamp, t.session AS session, t.intent AS intent,
        t.confidence AS confidence, t.input AS input, t.reply AS reply, t.outcome AS outcome
        ORDER BY t.confidence ASC, t.seq DESC LIMIT $limit""",
    "graph_for_turn": """MATCH (t:Turn {id: $turn_id}) OPTIONAL MATCH (t)-[:RETRIEVED]->(p:Passage)
        OPTIONAL MATCH (p)-[:PART_OF]->(doc:Document) OPTIONAL MATCH (m:Model)-[:GENERATED]->(t)
        OPTIONAL MATCH (d:Dataset)-[:USED_IN]->(m) OPTIONAL MATCH (t)-[:IN_SESSION]->(s:Session)
        OPTIONAL MATCH (t)-[:HANDLED_BY]->(a:Agent)
        RETURN t.id AS turn, t.intent AS intent, collect(DISTINCT p.id) AS passages,
        collect(DISTINCT [p.id, doc.id]) AS part_of, collect(DISTINCT m.id) AS models,
        collect(DISTINCT [d.path, m.id]) AS used_in, collect(DISTINCT s.id) AS sessions,
        collect(DISTINCT a.id) AS agents""",
}

# The seed's Cypher queries (its section 3), in the seed's vocabulary: Dataset{hash, path,
# description, timestamp}, Model{name, commit, hyperparameters, environment, timestamp},
# Inference{id, input, output, timestamp}, (Dataset)-[:USED_IN]->(Model)-[:GENERATED]->(Inference).
# The importer gives the graph those names beside Sahayak's own, so these run unchanged.
SEED_CYPHER: dict[str, str] = {
    "3.1": """MATCH (d:Dataset) RETURN d.hash AS hash, d.path AS path, d.description AS description,
        d.timestamp AS timestamp ORDER BY d.timestamp""",
    "3.2": """MATCH (m:Model) RETURN m.name AS name, m.commit AS commit, m.hyperparameters AS hyperparameters,
        m.environment AS environment, m.timestamp AS timestamp ORDER BY m.timestamp""",
    "3.3": """MATCH (d:Dataset)-[:USED_IN]->(m:Model) RETURN m.name AS model, m.commit AS commit,
        collect(d.path) AS datasets ORDER BY model""",
    "3.4": """MATCH (m:Model)-[:GENERATED]->(i:Inference) RETURN m.name AS model, i.id AS inference, i.input AS input,
        i.output AS output, i.timestamp AS timestamp ORDER BY i.timestamp DESC LIMIT 25""",
    "3.5": """MATCH (d:Dataset)-[:USED_IN]->(m:Model)-[:GENERATED]->(i:Inference)
        RETURN d.path AS dataset, d.hash AS hash, m.name AS model, m.commit AS commit, i.id AS inference,
        i.timestamp AS timestamp ORDER BY i.timestamp DESC LIMIT 25""",
    "3.6": """MATCH (d:Dataset)-[:USED_IN]->(m:Model) WITH m, count(d) AS datasets WHERE datasets > 1
        RETURN m.name AS model, m.commit AS commit, datasets ORDER BY datasets DESC""",
    "3.7": """MATCH (d:Dataset)-[:USED_IN]->(m:Model) WITH d, count(m) AS models, collect(m.name) AS names
        WHERE models > 1 RETURN d.path AS dataset, d.hash AS hash, models, names ORDER BY models DESC""",
    "3.8": """MATCH (m:Model) WHERE NOT (:Dataset)-[:USED_IN]->(m) RETURN m.name AS model, m.timestamp AS timestamp
        ORDER BY model""",
}

_WRITE_CLAUSES = ("CREATE", "MERGE", "DELETE", "DETACH", "SET", "REMOVE", "DROP", "LOAD", "CALL", "FOREACH",
                  "ALTER", "GRANT", "REVOKE", "DENY", "START", "STOP", "TERMINATE")


def read_only_problem(cypher: str) -> str | None:
    """Why a staff-typed Cypher statement is refused (None when it only reads).

    Writes, procedure calls and admin commands are refused by keyword, outside string literals
    and comments; the statement also runs in a READ transaction, so a server that enforces
    access modes refuses a write the keyword check missed."""
    code = re.sub(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`[^`]*`", "''", cypher)
    code = re.sub(r"//[^\n]*|/\*.*?\*/", " ", code, flags=re.S)
    words = set(re.findall(r"[A-Za-z_]+", code.upper()))
    bad = sorted(words & set(_WRITE_CLAUSES))
    if bad:
        return f"only read-only Cypher is allowed (found {', '.join(bad)})"
    if ";" in code.strip().rstrip(";"):
        return "one statement at a time"
    return None


# Fields stored as JSON text in the graph (graph properties cannot be maps); decoded on the way out.
_JSON_FIELDS = {"hyperparameters", "metrics", "entities", "model_versions", "scores", "detail", "environment"}


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in row.items():
        if k in _JSON_FIELDS and isinstance(v, str):
            try:
                v = json.loads(v)
            except ValueError:
                pass
        out[k] = v
    return out


def _within(seconds: float, fn: Callable[[], Any]) -> Any:
    """``fn()``'s result, or TimeoutError when it has not returned within ``seconds``.

    The neo4j driver has no read timeout of its own: against a frozen server (SIGSTOP, a hung JVM)
    a query waits on its socket forever. So the query runs in a daemon thread and the caller stops
    waiting; the thread ends when the server answers or its connection drops."""
    box: dict[str, Any] = {}
    done = threading.Event()

    def work() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=work, daemon=True, name="graph-query").start()
    if not done.wait(seconds):
        raise TimeoutError(f"no answer within {seconds:g}s")
    if "error" in box:
        raise box["error"]
    return box["value"]


class Audit:
    """Read-only audit queries (one driver per instance; use as a context manager).

    Each query is bounded by ``settings.graph_query_timeout_s``: an unreachable or frozen graph
    raises :class:`GraphUnavailable` ("graph unavailable: …") instead of hanging the console."""

    def __init__(self, settings: Any = None) -> None:
        if settings is None:
            settings = get_settings()
        self.settings = settings
        self._driver = None

    def __enter__(self) -> "Audit":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if self._driver is not None:
            self._driver.close()
            self._driver = None

    def _abandon(self) -> None:
        """Drop the driver after a timeout; closing it would wait on the same frozen socket."""
        stuck, self._driver = self._driver, None
        if stuck is not None:
            threading.Thread(target=stuck.close, daemon=True, name="graph-close").start()

    def run(self, name: str, **params: Any) -> list[dict[str, Any]]:
        """Run a named query from :data:`QUERIES` and return its rows as dicts (within the timeout)."""
        from neo4j.exceptions import ServiceUnavailable  # heavy: deferred to the first query

        timeout = float(getattr(self.settings, "graph_query_timeout_s", 5.0))
        if self._driver is None:
            self._driver = driver(self.settings, timeout=timeout)
        drv = self._driver

        def query() -> list[dict[str, Any]]:
            with drv.session(database=self.settings.neo4j_database) as s:
                return [_decode(r.data()) for r in s.run(QUERIES[name], **params)]

        try:
            return _within(timeout, query)
        except TimeoutError as exc:
            self._abandon()
            raise GraphUnavailable(f"graph unavailable: the graph server at {self.settings.neo4j_uri} did not "
                                   f"answer within {timeout:g}s") from exc
        except ServiceUnavailable as exc:
            self._abandon()
            raise GraphUnavailable(f"graph unavailable: the graph server at {self.settings.neo4j_uri} is not "
                                   f"reachable; start it with `sahayak graph serve`") from exc

    def cypher(self, query: str, **params: Any) -> list[dict[str, Any]]:
        """Run staff-typed read-only Cypher (writes refused, READ transaction); rows as dicts."""
        from neo4j import READ_ACCESS
        from neo4j.exceptions import ClientError, ServiceUnavailable  # heavy: deferred to the first query

        problem = read_only_problem(query)
        if problem:
            raise SahayakError(problem)
        if self._driver is None:
            self._driver = driver(self.settings)
        try:
            with self._driver.session(database=self.settings.neo4j_database, default_access_mode=READ_ACCESS) as s:
                return s.execute_read(lambda tx: [_decode(r.data()) for r in tx.run(query, **params)])
        except ServiceUnavailable as exc:
            raise SahayakError(f"graph server at {self.settings.neo4j_uri} is not reachable") from exc
        except ClientError as exc:
            raise SahayakError(f"the graph refused the query: {exc.message}") from exc

    def seed_query(self, number: str) -> list[dict[str, Any]]:
        """One of the seed's queries 3.1–3.8 (:data:`SEED_CYPHER`), unchanged."""
        return self.cypher(SEED_CYPHER[number])

    def session_id(self, session: str) -> str:
        """Accept a raw session id or its pseudonym (``s_…``)."""
        if session.startswith("s_"):
            return session
        return pseudonym(self.settings, session, "s_")

    # --- the seed's queries -----------------------------------------------------------
    def datasets(self) -> list[dict]:
        return self.run("datasets")

    def models(self) -> list[dict]:
        return self.run("models")

    def datasets_per_model(self) -> list[dict]:
        return self.run("datasets_per_model")

    def inferences(self, limit: int = 50) -> list[dict]:
        return self.run("inferences", limit=limit)

    def lineage(self, limit: int = 50) -> list[dict]:
        return self.run("lineage", limit=limit)

    def multi_dataset_models(self) -> list[dict]:
        return self.run("multi_dataset_models")

    def models_without_datasets(self) -> list[dict]:
        return self.run("models_without_datasets")

    # --- staff queries ----------------------------------------------------------------
    def session_timeline(self, session: str) -> list[dict]:
        """Turns and events of one session, in log order."""
        sid = self.session_id(session)
        rows = self.run("session_timeline", session=sid) + self.run("session_events", session=sid)
        return sorted(rows, key=lambda r: (r.get("seq") is None, r.get("seq")))

    def why(self, turn_id: str) -> dict[str, Any]:
        """Why did the bot say this: turn → passages → documents, and turn ← models ← datasets."""
        turn = self.run("why_turn", turn_id=turn_id)
        if not turn:
            raise SahayakError(f"turn {turn_id} is not in the graph (run `sahayak graph import`)")
        return {"turn": turn[0], "passages": self.run("why_passages", turn_id=turn_id),
                "models": self.run("why_models", turn_id=turn_id)}

    def handoffs(self, limit: int = 50) -> list[dict]:
        return self.run("handoffs", limit=limit)

    def low_confidence(self, threshold: float | None = None, limit: int = 50) -> list[dict]:
        th = self.settings.clarify_threshold if threshold is None else threshold
        return self.run("low_confidence", threshold=float(th), limit=limit)

    def turn_graph(self, turn_id: str) -> dict[str, Any]:
        rows = self.run("graph_for_turn", turn_id=turn_id)
        if not rows:
            raise SahayakError(f"turn {turn_id} is not in the graph")
        return rows[0]


def verify_session(session: str, settings: Any = None) -> dict[str, Any]:
    """Verify one session's records from the signed log, for display next to the timeline.

    For each turn/event of the session: signature ✓, chain link ✓ and a Merkle inclusion
    proof against the latest checkpoint covering it ✓ (or ``None`` when not checkpointed yet).
    Genuine records carry their verified ``content`` (the signed record); lines that failed
    verification carry none."""
    if settings is None:
        settings = get_settings()
    sid = session if session.startswith("s_") else pseudonym(settings, session, "s_")
    v = verify_log(settings.provenance_dir, settings=settings)
    out = _genuine_session_records(v, sid) + _failed_session_lines(v, sid, Path(settings.provenance_dir))
    out.sort(key=lambda x: (x["file"], x["line"]))
    ok = all(x["signature_ok"] and x["chain_ok"] and x["included"] is not False and "failure" not in x for x in out)
    return {"session": sid, "records": out, "ok": ok and bool(out), "log_ok": v.ok,
            "log_failures": len(v.failures)}


def _genuine_session_records(v: Verification, sid: str) -> list[dict[str, Any]]:
    """The session's verified records, each with its inclusion proof checked."""
    failed_lines = {(Path(f.file).name, f.line) for f in v.failures}
    out = []
    for r in v.records:
        if r.record.get("session") != sid:
            continue
        index = r.seq - v.first_seq
        cp = next((c for c in reversed(v.checkpoints) if c["tree_size"] > index), None)
        included = None
        if cp is not None:
            proof = inclusion_proof(index, v.leaves[: cp["tree_size"]])
            included = verify_inclusion(index, cp["tree_size"], v.leaves[index], proof, bytes.fromhex(cp["root_hash"]))
        out.append({"record_id": r.record_id, "type": r.type, "turn_id": r.record.get("turn_id"),
                    "kind": r.record.get("kind"), "timestamp": r.record.get("timestamp"), "file": r.file,
                    "line": r.line, "signature_ok": r.signature_ok and (r.file, r.line) not in failed_lines,
                    "chain_ok": r.chain_ok, "included": included,
                    "checkpoint_tree_size": cp["tree_size"] if cp else None,
                    # The verified record itself: what the console shows (never the graph's copy).
                    "content": r.record})
    return out


def _failed_session_lines(v: Verification, sid: str, folder: Path) -> list[dict[str, Any]]:
    """Lines that failed verification are not records, but the session must still show them."""
    out = []
    for f in v.failures:
        claimed = _claimed_record(folder / Path(f.file).name, f.line)
        if claimed and claimed.get("session") == sid:
            out.append({"record_id": claimed.get("record_id"), "type": claimed.get("type"),
                        "turn_id": claimed.get("turn_id"), "kind": claimed.get("kind"),
                        "timestamp": claimed.get("timestamp"), "file": Path(f.file).name, "line": f.line,
                        "signature_ok": f.kind not in ("signature", "hash", "parse", "schema"),
                        "chain_ok": f.kind != "chain", "included": False if f.kind == "checkpoint" else None,
                        "failure": f"{f.kind}: {f.detail}"})
    return out


def _claimed_record(path: Path, line_no: int) -> dict[str, Any] | None:
    """What a (possibly tampered) log line claims to be, without trusting it."""
    try:
        with open(path, "rb") as fh:
            for i, raw in enumerate(fh, start=1):
                if i == line_no:
                    return json.loads(json.loads(raw)["signed_data"])["record"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return None


#: Column of each node kind in the lineage picture, left to right, and its colour.
_LAYER = {"Dataset": 0, "Model": 1, "Turn": 2, "Session": 3, "Agent": 3, "Passage": 3, "Document": 4}
_COLOURS = {"Dataset": "#8dd3c7", "Model": "#fdb462", "Turn": "#fb8072", "Session": "#bebada",
            "Agent": "#80b1d3", "Passage": "#b3de69", "Document": "#fccde5"}


def _lineage_edges(g: dict[str, Any]) -> list[tuple[tuple[str, Any], tuple[str, Any], str]]:
    """The edges of one turn's lineage as ((kind, name), (kind, name), relation); empty names dropped."""
    t = ("Turn", g["turn"])
    edges = [(t, ("Session", s), "IN_SESSION") for s in g["sessions"]]
    edges += [(t, ("Agent", a), "HANDLED_BY") for a in g["agents"]]
    edges += [(t, ("Passage", p), "RETRIEVED") for p in g["passages"]]
    edges += [(("Passage", p), ("Document", d), "PART_OF") for p, d in g["part_of"] if p and d]
    edges += [(("Model", m), t, "GENERATED") for m in g["models"]]
    edges += [(("Dataset", d), ("Model", m), "USED_IN") for d, m in g["used_in"] if d and m]
    return edges


def render_lineage(audit: Audit, turn_id: str, path: str | Path) -> Path:
    """Draw the lineage of one turn (datasets → models → turn → passages → documents) as PNG or SVG."""
    # Drawing libraries (matplotlib is heavy): only this picture needs them.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # heavy: as above
    import networkx as nx  # heavy: networkx (~0.17 s), only this picture

    G = nx.DiGraph()
    kinds: dict[str, str] = {}

    def node(kind: str, name: Any) -> str | None:
        if not name:
            return None
        key = f"{kind}:{name}"
        G.add_node(key, label=f"{kind}\n{str(name)[:28]}")
        kinds[key] = kind
        return key

    g = audit.turn_graph(turn_id)
    node("Turn", g["turn"])  # first: node order decides the layout within a column
    for a, b, label in _lineage_edges(g):
        G.add_edge(node(*a), node(*b), label=label)
    for n in G.nodes:
        G.nodes[n]["layer"] = _LAYER[kinds[n]]
    pos = nx.multipartite_layout(G, subset_key="layer")
    fig, ax = plt.subplots(figsize=(12, 6))
    nx.draw_networkx(G, pos, ax=ax, labels=nx.get_node_attributes(G, "label"), node_size=2600, font_size=7,
                     node_color=[_COLOURS[kinds[n]] for n in G.nodes], arrows=True)
    nx.draw_networkx_edge_labels(G, pos, edge_labels=nx.get_edge_attributes(G, "label"), font_size=6, ax=ax)
    ax.set_title(f"Lineage of turn {turn_id}")
    ax.axis("off")
    path = Path(path)
    fig.savefig(path, bbox_inches="tight", format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
    return path
