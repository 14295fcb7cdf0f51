"""The per-line checks of the verifier, in the order it reports them.

:class:`LineChecker` takes one parsed line at a time (:func:`parse_line`) and checks, each
in its own method: the line is a JSON envelope (``parse``, or ``torn_tail`` at the end of a
file), a seed 1.1 envelope's signature, the 2.0 envelope's shape (``schema``), the signature
by a trusted key (``signature``), ``hash`` = SHA-256(``signed_data``), the top-level copies
of the signed fields and the record's schema (``schema``); then, for a genuine line only,
the acknowledgement of a pending torn tail, the chain link and sequence (``chain``), a key
rotation's new key, and a checkpoint's Merkle root (``checkpoint``).

Report shapes (:class:`Failure`, :class:`RecordInfo`, :class:`Verification`) and the seed
envelope format (:func:`validate_seed_envelope`, :func:`seal_seed`) live here too; the
driver that feeds lines, in-process or with signature workers, is :mod:`provenance.verify`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from provenance.canonical import (
    SCHEMA_VERSION,
    SEED_SCHEMA_VERSION,
    b64d,
    b64e,
    sha256_hex,
    stable_json,
)
from provenance.keys import load_public_pem, verify_signature
from provenance.log import read_lines
from provenance.merkle import Frontier, leaf_hash, root_from_leaves
from provenance.records import ENVELOPE_FIELDS, GENESIS_HASH, schema_problems


@dataclass
class Failure:
    file: str
    line: int
    kind: str  # parse | schema | hash | signature | chain | checkpoint | torn_tail | truncated
    detail: str
    record_id: str | None = None
    seq: int | None = None


@dataclass
class RecordInfo:
    """What the verifier learned about one genuine record (used for proofs and the console)."""

    file: str
    line: int
    seq: int
    record_id: str
    type: str
    hash: str
    record: dict[str, Any]
    signature_ok: bool
    chain_ok: bool


@dataclass
class Verification:
    path: str
    files: list[str] = field(default_factory=list)
    lines: int = 0
    valid: int = 0
    seed_envelopes: int = 0
    failures: list[Failure] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    checkpoints_verified: int = 0
    checkpoints_failed: int = 0
    consistency_verified: int = 0
    keys_used: set[str] = field(default_factory=set)
    # for proofs / session checks (not part of the JSON report)
    leaves: list[bytes] = field(default_factory=list, repr=False)
    records: list[RecordInfo] = field(default_factory=list, repr=False)
    checkpoints: list[dict[str, Any]] = field(default_factory=list, repr=False)
    first_seq: int = 0

    @property
    def ok(self) -> bool:
        return not self.failures

    def report(self) -> dict[str, Any]:
        kinds: dict[str, int] = {}
        for f in self.failures:
            kinds[f.kind] = kinds.get(f.kind, 0) + 1
        return {
            "ok": self.ok,
            "path": self.path,
            "files": self.files,
            "lines": self.lines,
            "valid_records": self.valid,
            "seed_envelopes": self.seed_envelopes,
            "failure_count": len(self.failures),
            "failures_by_kind": kinds,
            "failures": [asdict(f) for f in self.failures],
            "warnings": self.warnings,
            "checkpoints": {"verified": self.checkpoints_verified, "failed": self.checkpoints_failed,
                            "first_to_last_consistency_verified": bool(self.consistency_verified)},
            "keys_used": sorted(self.keys_used),
        }


# ---------------------------------------------------------------------------------------
# seed (schema 1.1) envelopes
# ---------------------------------------------------------------------------------------
def validate_seed_envelope(envelope: dict[str, Any] | str, public_key: Any) -> list[str]:
    """Problems with a seed (schema 1.1) envelope; empty when it is valid.

    Reading of the seed format: ``{"signed_data": <stable JSON text of the record>,
    "signature": <base64 RSA-PSS/SHA-256 signature over the UTF-8 bytes of signed_data>,
    "schema_version": "1.1"}``. The signature is checked over ``signed_data`` exactly as
    stored (so the seed's separator style does not matter); any PSS salt length is accepted.
    """
    try:
        env = json.loads(envelope) if isinstance(envelope, str) else envelope
    except ValueError as exc:
        return [f"not JSON: {exc}"]
    problems = []
    if not isinstance(env, dict):
        return ["envelope is not an object"]
    if env.get("schema_version") != SEED_SCHEMA_VERSION:
        problems.append(f"schema_version {env.get('schema_version')!r} != {SEED_SCHEMA_VERSION!r}")
    extra = set(env) - {"signed_data", "signature", "schema_version"}
    if extra:
        problems.append(f"unexpected fields {sorted(extra)}")
    sd, sig = env.get("signed_data"), env.get("signature")
    if not isinstance(sd, str) or not isinstance(sig, str):
        return problems + ["signed_data and signature must be strings"]
    try:
        if not isinstance(json.loads(sd), dict):
            problems.append("signed_data is not a JSON object")
    except ValueError:
        problems.append("signed_data is not JSON")
    try:
        raw_sig = b64d(sig)
    except ValueError:
        return problems + ["signature is not base64"]
    if public_key is None:
        problems.append("no RSA public key given for seed envelopes")
    elif not verify_signature(public_key, sd.encode("utf-8"), raw_sig):
        problems.append("RSA-PSS signature does not verify")
    return problems


def seal_seed(record: dict[str, Any], private_key: Any) -> str:
    """Make a seed-format (1.1) envelope line; used to test interoperability with old logs."""
    sd = stable_json(record)
    sig = private_key.sign(sd.encode(), padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                                                    salt_length=padding.PSS.MAX_LENGTH), hashes.SHA256())
    return json.dumps({"signed_data": sd, "signature": b64e(sig), "schema_version": SEED_SCHEMA_VERSION},
                      sort_keys=True)


# ---------------------------------------------------------------------------------------
# lines
# ---------------------------------------------------------------------------------------
@dataclass(slots=True)
class CheckedLine:
    """One line on its way through the verifier: where it is, and what parsing it gave."""

    fname: str
    n: int
    raw: bytes
    complete: bool
    start: int
    end: int
    at_end: bool  # the last bytes of its file (a torn tail is only possible here)
    last_file: bool
    first_in_file: bool
    env: Any = None
    error: ValueError | None = None  # the line is not a complete JSON value
    inner: dict[str, Any] | None = None  # parsed signed_data (schema 2.0 envelopes only)
    inner_error: Exception | None = None
    data: bytes = b""  # signed_data as UTF-8, the bytes that are signed, hashed and Merkle-hashed
    key: Any = None  # the key a worker checked the signature with
    sig_ok: bool | None = None  # the worker's answer


def signature_valid(key: Any, data: bytes, signature: Any) -> bool:
    """True when the envelope's base64 ``signature`` verifies over ``data`` with ``key``."""
    if not isinstance(signature, str):
        return False
    try:
        return verify_signature(key, data, b64d(signature))
    except ValueError:
        return False


def parse_line(ln: CheckedLine) -> None:
    """Parse a line (and, for a schema 2.0 envelope, its signed_data) once; failures are kept
    on the line for the sequential pass to report in their usual order."""
    try:
        env = json.loads(ln.raw)
        if not ln.complete:
            raise ValueError("line has no terminating newline")
    except ValueError as exc:
        ln.error = exc
        return
    ln.env = env
    if not isinstance(env, dict) or env.get("schema_version") != SCHEMA_VERSION:
        return
    if any(f not in env for f in ENVELOPE_FIELDS):
        return
    try:
        inner = json.loads(env["signed_data"])
        inner["record"]  # noqa: B018 - a signed record must have one
        ln.data = env["signed_data"].encode("utf-8")  # lone surrogates from \u escapes fail here
    except (ValueError, KeyError, TypeError) as exc:
        ln.inner_error = exc
        return
    ln.inner = inner


def stream_lines(files: list[Path]) -> Iterator[Path | CheckedLine]:
    """Each file (as a marker) followed by its lines, in log order."""
    for i, path in enumerate(files):
        last = i == len(files) - 1
        size = path.stat().st_size
        yield path
        first = True
        for line in read_lines(path):
            yield CheckedLine(path.name, line.number, line.raw, line.complete, line.start, line.end,
                              line.end == size, last, first)
            first = False


# ---------------------------------------------------------------------------------------
# the sequential checks
# ---------------------------------------------------------------------------------------
class LineChecker:
    """Checks lines in log order and records what it finds in a :class:`Verification`."""

    def __init__(self, keys: dict[str, Any], seed_keys: list[Any], v: Verification) -> None:
        self.keys = dict(keys)
        self.seed_keys = seed_keys
        self.v = v
        self.expected_seq: int | None = None  # None: accept the first seq seen (a later segment alone)
        self.last_hash: str | None = None
        self.failed_prev: tuple[str | None, int | None] | None = None  # declared (hash, seq) of a failed line
        self.prev_checkpoint: dict[str, Any] | None = None
        self.pending_ack: dict[str, Any] | None = None
        self.frontier = Frontier()
        self.root_before: bytes | None = None
        self._pem_cache: dict[Any, Any] = {}

    def fail(self, file: str, line: int, kind: str, detail: str, rid: str | None = None, seq: int | None = None) -> None:
        self.v.failures.append(Failure(file, line, kind, detail, rid, seq))

    def _load_pem(self, pem: Any) -> Any:
        """A rotation event's public key, loaded once, so the parallel pass and the sequential
        pass hold the very same key object (and can tell that a worker used the right one)."""
        try:
            return self._pem_cache[pem]
        except KeyError:
            pass
        except TypeError as exc:  # unhashable: not a PEM at all
            raise ValueError("public key is not PEM text") from exc
        try:
            key = load_public_pem(pem)
        except (TypeError, AttributeError) as exc:
            raise ValueError("public key is not PEM text") from exc
        self._pem_cache[pem] = key
        return key

    def start_file(self, path: Path) -> None:
        self.v.files.append(str(path))

    def one(self, ln: CheckedLine) -> None:
        """Check one parsed line (see the module docstring for the order of the checks)."""
        self.v.lines += 1
        if ln.error is not None:
            self._unparsed(ln)
            return
        if not isinstance(ln.env, dict):
            self.fail(ln.fname, ln.n, "parse", "line is not a JSON object")
            return
        if ln.env.get("schema_version") == SEED_SCHEMA_VERSION:
            self._seed_envelope(ln)
            return
        if not self._envelope_schema(ln):
            return
        env = ln.env
        rid, seq = env.get("record_id"), env.get("seq")
        # Signature first: it decides whether this line is genuine at all.
        sig_ok = self._signature(ln, rid, seq)
        computed = sha256_hex(ln.data)
        ok = sig_ok
        ok &= self._hash(ln, computed, rid, seq)
        ok &= self._signed_copies(ln, rid, seq)
        ok &= self._record_schema(ln, rid, seq)
        if not sig_ok:
            # Not genuine: do not move the chain; the next line may continue either side.
            self.failed_prev = (env.get("hash"), seq if isinstance(seq, int) else None)
            return
        self._torn_acknowledgement(ln)
        chain_ok = self._chain_link(ln, rid)
        leaf_index = self._append_record(ln, computed, chain_ok)
        if ok:
            ok &= self._key_rotation(ln, rid)
        record = ln.inner["record"]
        if record.get("type") == "checkpoint":
            ok &= self.checkpoint(ln.fname, ln.n, record, leaf_index)
        if ok and chain_ok:
            self.v.valid += 1

    # --- before the signature -----------------------------------------------------------
    def _unparsed(self, ln: CheckedLine) -> None:
        """A line that is not a complete JSON value: a torn tail at the end of a file, else ``parse``."""
        fname, n, exc = ln.fname, ln.n, ln.error
        if ln.at_end:
            info = {"segment": fname, "line": n, "offset": ln.start, "length": ln.end - ln.start,
                    "sha256": sha256_hex(ln.raw)}
            if ln.last_file:
                self.fail(fname, n, "torn_tail", f"torn last line ({exc}); no later segment acknowledges it")
            else:
                self.pending_ack = info
            return
        self.fail(fname, n, "parse", f"not a JSON envelope: {exc}")
        self.failed_prev = (None, None)

    def _seed_envelope(self, ln: CheckedLine) -> None:
        """A seed (schema 1.1) envelope: its RSA-PSS signature by one of the seed keys."""
        env = ln.env
        self.v.seed_envelopes += 1
        probs = validate_seed_envelope(env, self.seed_keys[0] if len(self.seed_keys) == 1 else None) \
            if len(self.seed_keys) <= 1 else self._seed_any(env)
        for p in probs:
            self.fail(ln.fname, ln.n, "signature" if "signature" in p or "key" in p else "schema", f"seed 1.1: {p}")
        if not probs:
            self.v.valid += 1

    def _seed_any(self, env: dict[str, Any]) -> list[str]:
        results = [validate_seed_envelope(env, k) for k in self.seed_keys]
        return [] if any(not r for r in results) else results[0]

    def _envelope_schema(self, ln: CheckedLine) -> bool:
        """A schema 2.0 envelope with every field and a signed record inside; False (reported) otherwise."""
        fname, n, env = ln.fname, ln.n, ln.env
        sv = env.get("schema_version")
        if sv != SCHEMA_VERSION:
            self.fail(fname, n, "schema", f"unknown schema_version {sv!r}")
            self.failed_prev = (env.get("hash"), env.get("seq"))
            return False
        missing = [f for f in ENVELOPE_FIELDS if f not in env]
        rid, seq = env.get("record_id"), env.get("seq")
        if missing:
            self.fail(fname, n, "schema", f"envelope missing {missing}", rid, seq)
            self.failed_prev = (env.get("hash"), seq)
            return False
        if ln.inner is None:
            self.fail(fname, n, "schema", f"signed_data is not a signed record: {ln.inner_error}", rid, seq)
            self.failed_prev = (env.get("hash"), seq)
            return False
        return True

    # --- the signed line ------------------------------------------------------------------
    def _signature(self, ln: CheckedLine, rid: Any, seq: Any) -> bool:
        """Signed by a trusted key (a worker's answer counts only if it used that very key)."""
        kid = ln.inner.get("key_id")
        key = self.keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            self.fail(ln.fname, ln.n, "signature", f"unknown signing key {kid!r}", rid, seq)
            return False
        sig_ok = ln.sig_ok if ln.key is key and ln.sig_ok is not None else \
            signature_valid(key, ln.data, ln.env["signature"])
        if not sig_ok:
            self.fail(ln.fname, ln.n, "signature", "signature does not verify", rid, seq)
        else:
            self.v.keys_used.add(kid)
        return sig_ok

    def _hash(self, ln: CheckedLine, computed: str, rid: Any, seq: Any) -> bool:
        """The envelope's ``hash`` is SHA-256 of its signed_data."""
        if ln.env["hash"] != computed:
            self.fail(ln.fname, ln.n, "hash", "hash field differs from SHA-256(signed_data)", rid, seq)
            return False
        return True

    def _signed_copies(self, ln: CheckedLine, rid: Any, seq: Any) -> bool:
        """The envelope's top-level fields equal the signed ones."""
        inner, env = ln.inner, ln.env
        record = inner["record"]
        is_dict = isinstance(record, dict)
        copies = {"seq": inner.get("seq"), "prev_hash": inner.get("prev_hash"), "key_id": inner.get("key_id"),
                  "alg": inner.get("alg"), "record_id": record.get("record_id") if is_dict else None,
                  "type": record.get("type") if is_dict else None,
                  "schema_version": inner.get("schema_version")}
        diff = [k for k, val in copies.items() if env.get(k) != val]
        if diff:
            self.fail(ln.fname, ln.n, "schema", f"top-level {diff} differ from the signed copy", rid, seq)
            return False
        return True

    def _record_schema(self, ln: CheckedLine, rid: Any, seq: Any) -> bool:
        """The signed record has the fields its type requires."""
        probs = schema_problems(ln.inner["record"])
        if probs:
            self.fail(ln.fname, ln.n, "schema", "; ".join(probs), rid, seq)
            return False
        return True

    # --- a genuine line: its place in the log ---------------------------------------------
    def _torn_acknowledgement(self, ln: CheckedLine) -> None:
        """After a torn tail, the next segment must start with a signed event naming it."""
        if self.pending_ack is None:
            return
        record = ln.inner["record"]
        ack = record if record.get("type") == "event" and record.get("kind") == "torn_segment" else None
        want = self.pending_ack
        if ack and ln.first_in_file and all(ack.get(k) == want[k] for k in ("segment", "line", "offset", "sha256")):
            self.v.warnings.append({"kind": "torn_tail", "file": want["segment"], "line": want["line"],
                                    "detail": f"acknowledged by signed event in {ln.fname}:{ln.n}"})
        else:
            self.fail(want["segment"], want["line"], "torn_tail", "torn last line not acknowledged by the next segment")
        self.pending_ack = None

    def _chain_link(self, ln: CheckedLine, rid: Any) -> bool:
        """``prev_hash`` continues the last genuine record (or the failed line before this one)."""
        if self.expected_seq is None:
            return self._chain_start(ln, rid)
        ok_prev = {self.last_hash}
        if self.failed_prev is not None:
            ok_prev.add(self.failed_prev[0])
        if ln.inner.get("prev_hash") not in ok_prev:
            self.fail(ln.fname, ln.n, "chain", "prev_hash does not match the previous record", rid, ln.inner.get("seq"))
            return False
        return self._sequence(ln, rid)

    def _chain_start(self, ln: CheckedLine, rid: Any) -> bool:
        """The first genuine record sets where the log starts; seq 0 must follow the genesis hash."""
        iseq = ln.inner.get("seq")
        self.v.first_seq = iseq if isinstance(iseq, int) else 0
        if iseq == 0 and ln.inner.get("prev_hash") != GENESIS_HASH:
            self.fail(ln.fname, ln.n, "chain", "first record does not start from the genesis hash", rid, iseq)
            return False
        return True

    def _sequence(self, ln: CheckedLine, rid: Any) -> bool:
        """``seq`` is the next number (or the one after the failed line before this one)."""
        iseq = ln.inner.get("seq")
        ok_seq = {self.expected_seq}
        if self.failed_prev is not None and isinstance(self.failed_prev[1], int):
            ok_seq.add(self.failed_prev[1] + 1)
        if iseq not in ok_seq:
            self.fail(ln.fname, ln.n, "chain", f"seq {iseq} where {self.expected_seq} was expected", rid, iseq)
            return False
        return True

    def _append_record(self, ln: CheckedLine, computed: str, chain_ok: bool) -> int:
        """Move the chain on past a genuine record and keep its leaf; returns the leaf's index."""
        v, inner = self.v, ln.inner
        record, iseq = inner["record"], inner.get("seq")
        self.failed_prev = None
        self.expected_seq = (iseq + 1) if isinstance(iseq, int) else None
        self.last_hash = computed
        leaf_index = len(v.leaves)
        # A checkpoint signs the root of the records *before* it: take it before adding its own leaf.
        self.root_before = self.frontier.root() if record.get("type") == "checkpoint" else None
        v.leaves.append(leaf_hash(ln.data))
        self.frontier.append(v.leaves[-1])
        v.records.append(RecordInfo(ln.fname, ln.n, iseq, record.get("record_id"), record.get("type"), computed,
                                    record, True, chain_ok))
        return leaf_index

    def _key_rotation(self, ln: CheckedLine, rid: Any) -> bool:
        """A rotation signed by a trusted key introduces its successor (False if its key is unusable)."""
        record = ln.inner["record"]
        if not (record.get("type") == "event" and record.get("kind") == "key_rotation"):
            return True
        try:
            self.keys[record["new_key_id"]] = self._load_pem(record["new_public_pem"])
        except (KeyError, TypeError, ValueError):
            self.fail(ln.fname, ln.n, "schema", "key_rotation event without a usable public key", rid,
                      ln.inner.get("seq"))
            return False
        return True

    def checkpoint(self, fname: str, n: int, rec: dict[str, Any], leaf_index: int) -> bool:
        """A checkpoint's tree size and Merkle root over the records before it, and its link to the last one."""
        v = self.v
        size, root = rec.get("tree_size"), rec.get("root_hash")
        base = v.first_seq
        if base:  # this file does not start at the log's beginning: the root cannot be recomputed
            v.warnings.append({"kind": "checkpoint_unverifiable", "file": fname, "line": n,
                               "detail": "earlier segments not given; verify the folder to check this checkpoint"})
            return True
        if not isinstance(size, int) or size != leaf_index:
            self.fail(fname, n, "checkpoint", f"tree_size {size} but the checkpoint follows {leaf_index} records",
                      rec.get("record_id"))
            v.checkpoints_failed += 1
            return False
        got = self.root_before.hex() if self.frontier.size == size + 1 else root_from_leaves(v.leaves[:size]).hex()
        if got != root:
            self.fail(fname, n, "checkpoint", f"Merkle root over {size} records is {got[:16]}…, checkpoint says "
                      f"{str(root)[:16]}…", rec.get("record_id"))
            v.checkpoints_failed += 1
            return False
        prev = self.prev_checkpoint
        if prev and (rec.get("prev_tree_size") != prev["tree_size"] or rec.get("prev_root_hash") != prev["root_hash"]):
            self.fail(fname, n, "checkpoint", "checkpoint does not name the previous checkpoint", rec.get("record_id"))
            v.checkpoints_failed += 1
            return False
        v.checkpoints_verified += 1
        self.prev_checkpoint = {"tree_size": size, "root_hash": root}
        v.checkpoints.append({"file": fname, "line": n, "tree_size": size, "root_hash": root,
                              "record_id": rec.get("record_id"), "seq": leaf_index})
        return True
