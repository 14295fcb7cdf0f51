"""Record types, their required fields, and the signed envelope around each record.

An envelope (schema 2.0) is one JSONL line::

    {"schema_version": "2.0", "seq": 7, "record_id": "...", "type": "turn",
     "prev_hash": "<hash of envelope 6>", "hash": "<sha256 of signed_data>",
     "key_id": "...", "alg": "ed25519", "signed_data": "<stable JSON>", "signature": "<base64>"}

``signed_data`` is the stable JSON of ``{"schema_version", "seq", "prev_hash", "key_id",
"alg", "record"}``, so the signature covers the record *and* its place in the chain; the
top-level copies of those fields are conveniences the verifier checks against it.
The Merkle leaf of an envelope is ``leaf_hash(signed_data)``.
"""

from __future__ import annotations

import uuid
from typing import Any

from provenance.canonical import SCHEMA_VERSION, b64e, iso_utc, sha256_hex, stable_json
from provenance.merkle import leaf_hash

GENESIS_HASH = "0" * 64

# Fields every record of a type must carry (beyond record_id, type, timestamp, schema_version).
REQUIRED: dict[str, tuple[str, ...]] = {
    "dataset": ("path", "sha256", "description"),
    "model": ("name", "version", "hyperparameters", "metrics", "git_commit", "environment", "dataset_hashes"),
    "turn": (
        "turn_id", "session", "user", "channel", "input", "prompt_hash", "intent", "confidence", "entities",
        "handler", "outcome", "state", "passages", "scoring_request_id", "reply", "latency_ms", "model_versions",
    ),
    "training": ("training_id", "model_id", "started_at", "ended_at", "agent", "dataset_hashes", "git_commit"),
    "event": ("kind",),
    "checkpoint": ("tree_size", "root_hash"),
}
# Event kinds with fields of their own. A staff read says who read what, and why: ``scope`` is
# ``handoff`` / ``flagged`` (the session was in the staff queue) or ``reason`` (then ``reason``
# holds the stated reason); ``route`` is the console page.
STAFF_READ = "staff_read"
# A reviewer's correction of a turn's intent (staff console); ``feedback_id`` is its feedback row.
INTENT_CORRECTION = "intent_correction"
EVENT_REQUIRED: dict[str, tuple[str, ...]] = {STAFF_READ: ("staff", "scope", "route"),
                                              INTENT_CORRECTION: ("staff", "turn_id", "correct_intent",
                                                                  "feedback_id")}
STAFF_READ_SCOPES = ("handoff", "flagged", "reason")
COMMON = ("record_id", "type", "timestamp", "schema_version")
ENVELOPE_FIELDS = ("schema_version", "seq", "record_id", "type", "prev_hash", "hash", "key_id", "alg", "signed_data", "signature")


def new_record_id() -> str:
    return uuid.uuid4().hex


def base_record(kind: str, record_id: str | None = None, timestamp: Any = None) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "record_id": record_id or new_record_id(),
        "type": kind,
        "timestamp": timestamp if isinstance(timestamp, str) else iso_utc(timestamp),
    }


def schema_problems(record: Any) -> list[str]:
    """What is wrong with a record's shape (empty list when it is well formed)."""
    if not isinstance(record, dict):
        return ["record is not an object"]
    problems = [f"missing field '{f}'" for f in COMMON if f not in record]
    if record.get("schema_version") != SCHEMA_VERSION:
        problems.append(f"record schema_version {record.get('schema_version')!r} != {SCHEMA_VERSION}")
    kind = record.get("type")
    if kind not in REQUIRED:
        problems.append(f"unknown record type {kind!r}")
        return problems
    problems += [f"{kind} record missing field '{f}'" for f in REQUIRED[kind] if f not in record]
    if kind == "event":
        ev = record.get("kind")
        problems += [f"{ev} event missing field '{f}'" for f in EVENT_REQUIRED.get(ev, ()) if not record.get(f)]
        if ev == STAFF_READ and record.get("scope") not in STAFF_READ_SCOPES:
            problems.append(f"staff_read scope {record.get('scope')!r} is not one of {STAFF_READ_SCOPES}")
        if ev == STAFF_READ and record.get("scope") == "reason" and not record.get("reason"):
            problems.append("staff_read with scope 'reason' states no reason")
    ts = record.get("timestamp")
    if isinstance(ts, str) and not (ts.endswith("+00:00") or ts.endswith("Z")):
        problems.append("timestamp is not UTC with an explicit offset")
    return problems


def seal(record: dict[str, Any], seq: int, prev_hash: str, signer: Any) -> tuple[str, str, bytes]:
    """Sign and chain ``record``: returns (JSONL line without newline, envelope hash, Merkle leaf)."""
    signed = {
        "schema_version": SCHEMA_VERSION,
        "seq": seq,
        "prev_hash": prev_hash,
        "key_id": signer.key_id,
        "alg": signer.alg,
        "record": record,
    }
    signed_data = stable_json(signed)
    data = signed_data.encode("utf-8")
    h = sha256_hex(data)
    env = {
        "schema_version": SCHEMA_VERSION,
        "seq": seq,
        "record_id": record["record_id"],
        "type": record["type"],
        "prev_hash": prev_hash,
        "hash": h,
        "key_id": signer.key_id,
        "alg": signer.alg,
        "signed_data": signed_data,
        "signature": b64e(signer.sign(data)),
    }
    return stable_json(env), h, leaf_hash(data)
