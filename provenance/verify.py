"""Offline verification of a provenance log (a segment file or the whole folder).

Every line is checked for: JSON shape and schema (``schema``/``parse``), ``hash`` =
SHA-256(``signed_data``) and top-level copies equal to the signed ones (``hash``/``schema``),
signature by a trusted key (``signature``), place in the chain (``chain``: ``prev_hash`` and
``seq`` continue the last genuine record), and every checkpoint's Merkle root over the
records before it (``checkpoint``). A torn last line is a ``torn_tail`` failure unless the
next segment starts with a signed ``torn_segment`` event that names it (then a warning).
Lines cut from the end are found through the signed head (``truncated``).

A line that fails its signature does not move the chain on, so a forged insertion is
reported on its own line; the next line may continue either the last genuine record or
the failed line's declared hash, so one changed byte is reported once, where it is.

Signatures are the cost (an Ed25519 check is most of a record's time), so on a large log
they are checked by worker processes (``workers``), a few chunks ahead of the sequential
pass that does everything else and uses their answers. A worker's answer counts only if it
used the very key the sequential pass trusts for that line at that point; otherwise (a key
announced by a rotation that turns out not to be genuine, a worker that died) the line is
checked in-process, so the result is the same whatever the number of workers.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
from collections import deque
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from provenance.canonical import SCHEMA_VERSION, SEED_SCHEMA_VERSION, b64d, sha256_hex
from provenance.keys import load_public_pem, verify_signature
from provenance.log import HEAD_NAME, list_segments, read_head, read_lines
from provenance.merkle import (
    Frontier,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_from_leaves,
    verify_consistency,
    verify_inclusion,
)
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
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    from provenance.canonical import b64e, stable_json

    sd = stable_json(record)
    sig = private_key.sign(sd.encode(), padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                                                    salt_length=padding.PSS.MAX_LENGTH), hashes.SHA256())
    return json.dumps({"signed_data": sd, "signature": b64e(sig), "schema_version": SEED_SCHEMA_VERSION},
                      sort_keys=True)


@dataclass(slots=True)
class _Line:
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


def _signature_valid(key: Any, data: bytes, signature: Any) -> bool:
    """True when the envelope's base64 ``signature`` verifies over ``data`` with ``key``."""
    if not isinstance(signature, str):
        return False
    try:
        return verify_signature(key, data, b64d(signature))
    except ValueError:
        return False


def _parse(ln: _Line) -> None:
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


def _stream(files: list[Path]) -> Iterator[Path | _Line]:
    """Each file (as a marker) followed by its lines, in log order."""
    for i, path in enumerate(files):
        last = i == len(files) - 1
        size = path.stat().st_size
        yield path
        first = True
        for line in read_lines(path):
            yield _Line(path.name, line.number, line.raw, line.complete, line.start, line.end, line.end == size,
                        last, first)
            first = False


# ---------------------------------------------------------------------------------------
# parallel signature checks
# ---------------------------------------------------------------------------------------
#: Lines per chunk handed to a worker (a few tens of milliseconds of Ed25519 work).
CHUNK_LINES = 400
#: Below this many log bytes the verifier stays in-process: starting a pool would cost more
#: than it saves (a forked pool starts in ~20 ms; a forkserver pool in ~0.7 s, as its workers
#: import this package afresh).
PARALLEL_MIN_BYTES = {"fork": 1 << 20, "forkserver": 48 << 20}

_WORKER_KEYS: dict[bytes, Any] = {}


def _check_signatures(keys_der: list[bytes], tasks: list[tuple[int, bytes, Any]]) -> bytes:
    """Worker: check ``(key index, signed bytes, base64 signature)`` triples; one byte per task, 1 = valid."""
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    keys = []
    for der in keys_der:
        key = _WORKER_KEYS.get(der)
        if key is None:
            key = _WORKER_KEYS[der] = load_der_public_key(der)
        keys.append(key)
    return bytes(_signature_valid(keys[i], data, sig) for i, data, sig in tasks)


def _start_method() -> str:
    """``fork`` when this process runs one thread (fast, and safe then); ``forkserver`` otherwise,
    since forking a threaded process (a web server, a tracker's writer) can copy a held lock."""
    return "fork" if threading.active_count() == 1 else "forkserver"


def default_workers() -> int:
    """Worker processes used when the caller does not say: one per CPU."""
    return os.cpu_count() or 1


class _Verifier:
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
        # Parallel mode: keys a line *may* be checked with (trusted keys plus every rotation seen
        # so far, genuine or not), and their DER encodings for the workers.
        self._candidates = dict(keys)
        self._der: list[bytes] = []
        self._der_index: dict[int, int] = {}
        self._der_keys: list[Any] = []  # keeps the keys alive, so their id()s stay unique

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

    # --- driving ------------------------------------------------------------------
    def run(self, files: list[Path], pool: Any = None, workers: int = 1) -> None:
        """Verify ``files`` in order; with ``pool``, signatures are checked by its workers a few
        chunks ahead of the sequential pass, which uses their answers (identical results)."""
        if pool is None:
            for item in _stream(files):
                if isinstance(item, Path):
                    self.start_file(item)
                else:
                    _parse(item)
                    self.one(item)
            return
        pending: deque[tuple[list, Any, list[_Line]]] = deque()
        chunk: list[Path | _Line] = []
        lines = 0
        for item in _stream(files):
            chunk.append(item)
            lines += not isinstance(item, Path)
            if lines >= CHUNK_LINES:
                pool = self._submit(pool, chunk, pending)
                chunk, lines = [], 0
                while len(pending) > 2 * workers:  # keep every worker busy, bound the memory
                    self._consume(*pending.popleft())
        if chunk:
            self._submit(pool, chunk, pending)
        while pending:
            self._consume(*pending.popleft())

    def _submit(self, pool: Any, chunk: list[Path | _Line], pending: deque) -> Any:
        """Parse a chunk here and hand its signature checks to the pool; returns the pool, or None
        once it has broken (the remaining lines are then checked in this process)."""
        tasks: list[tuple[int, bytes, Any]] = []
        checked: list[_Line] = []
        for ln in chunk:
            if isinstance(ln, Path):
                continue
            _parse(ln)
            if ln.inner is None:
                continue
            kid = ln.inner.get("key_id")
            key = self._candidates.get(kid) if isinstance(kid, str) else None
            if key is not None:
                ln.key = key
                tasks.append((self._der_of(key), ln.data, ln.env["signature"]))
                checked.append(ln)
            rec = ln.inner["record"]
            if isinstance(rec, dict) and rec.get("type") == "event" and rec.get("kind") == "key_rotation":
                try:
                    self._candidates[rec["new_key_id"]] = self._load_pem(rec["new_public_pem"])
                except (KeyError, TypeError, ValueError):
                    pass
        future = None
        if tasks and pool is not None:
            try:
                future = pool.submit(_check_signatures, list(self._der), tasks)
            except Exception:  # noqa: BLE001 - a broken pool: check these lines in this process
                pool = None
        if future is None:
            for ln in checked:
                ln.key = None
        pending.append((chunk, future, checked))
        return pool

    def _der_of(self, key: Any) -> int:
        from cryptography.hazmat.primitives import serialization

        i = self._der_index.get(id(key))
        if i is None:
            i = self._der_index[id(key)] = len(self._der)
            self._der.append(key.public_bytes(serialization.Encoding.DER,
                                              serialization.PublicFormat.SubjectPublicKeyInfo))
            self._der_keys.append(key)
        return i

    def _consume(self, chunk: list[Path | _Line], future: Any, checked: list[_Line]) -> None:
        if future is not None:
            try:
                answers = future.result()
            except Exception:  # noqa: BLE001 - a worker died: these lines are checked here instead
                answers = None
            for i, ln in enumerate(checked):
                if answers is None:
                    ln.key = None
                else:
                    ln.sig_ok = bool(answers[i])
        for item in chunk:
            if isinstance(item, Path):
                self.start_file(item)
            else:
                self.one(item)

    # --- the sequential checks ------------------------------------------------------
    def start_file(self, path: Path) -> None:
        self.v.files.append(str(path))

    def one(self, ln: _Line) -> None:
        v = self.v
        v.lines += 1
        fname, n = ln.fname, ln.n
        if ln.error is not None:
            exc = ln.error
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
            return
        env = ln.env
        if not isinstance(env, dict):
            self.fail(fname, n, "parse", "line is not a JSON object")
            return
        sv = env.get("schema_version")
        if sv == SEED_SCHEMA_VERSION:
            v.seed_envelopes += 1
            probs = validate_seed_envelope(env, self.seed_keys[0] if len(self.seed_keys) == 1 else None) \
                if len(self.seed_keys) <= 1 else self._seed_any(env)
            for p in probs:
                self.fail(fname, n, "signature" if "signature" in p or "key" in p else "schema", f"seed 1.1: {p}")
            if not probs:
                v.valid += 1
            return
        if sv != SCHEMA_VERSION:
            self.fail(fname, n, "schema", f"unknown schema_version {sv!r}")
            self.failed_prev = (env.get("hash"), env.get("seq"))
            return
        missing = [f for f in ENVELOPE_FIELDS if f not in env]
        rid, seq = env.get("record_id"), env.get("seq")
        if missing:
            self.fail(fname, n, "schema", f"envelope missing {missing}", rid, seq)
            self.failed_prev = (env.get("hash"), seq)
            return
        ok = True
        inner = ln.inner
        if inner is None:
            self.fail(fname, n, "schema", f"signed_data is not a signed record: {ln.inner_error}", rid, seq)
            self.failed_prev = (env.get("hash"), seq)
            return
        record = inner["record"]
        data = ln.data
        # Signature first: it decides whether this line is genuine at all.
        kid = inner.get("key_id")
        key = self.keys.get(kid) if isinstance(kid, str) else None
        sig_ok = False
        if key is None:
            self.fail(fname, n, "signature", f"unknown signing key {kid!r}", rid, seq)
        else:
            # A worker's answer counts only if it used the key this pass trusts for the line.
            sig_ok = ln.sig_ok if ln.key is key and ln.sig_ok is not None else \
                _signature_valid(key, data, env["signature"])
            if not sig_ok:
                self.fail(fname, n, "signature", "signature does not verify", rid, seq)
            else:
                v.keys_used.add(kid)
        ok &= sig_ok
        computed = sha256_hex(data)
        if env["hash"] != computed:
            self.fail(fname, n, "hash", "hash field differs from SHA-256(signed_data)", rid, seq)
            ok = False
        is_dict = isinstance(record, dict)
        copies = {"seq": inner.get("seq"), "prev_hash": inner.get("prev_hash"), "key_id": kid,
                  "alg": inner.get("alg"), "record_id": record.get("record_id") if is_dict else None,
                  "type": record.get("type") if is_dict else None,
                  "schema_version": inner.get("schema_version")}
        diff = [k for k, val in copies.items() if env.get(k) != val]
        if diff:
            self.fail(fname, n, "schema", f"top-level {diff} differ from the signed copy", rid, seq)
            ok = False
        probs = schema_problems(record)
        if probs:
            self.fail(fname, n, "schema", "; ".join(probs), rid, seq)
            ok = False
        if not sig_ok:
            # Not genuine: do not move the chain; the next line may continue either side.
            self.failed_prev = (env.get("hash"), seq if isinstance(seq, int) else None)
            return
        # Chain.
        iseq, iprev = inner.get("seq"), inner.get("prev_hash")
        chain_ok = True
        if self.pending_ack is not None:
            ack = record if record.get("type") == "event" and record.get("kind") == "torn_segment" else None
            want = self.pending_ack
            if ack and ln.first_in_file and all(ack.get(k) == want[k] for k in ("segment", "line", "offset", "sha256")):
                v.warnings.append({"kind": "torn_tail", "file": want["segment"], "line": want["line"],
                                   "detail": f"acknowledged by signed event in {fname}:{n}"})
            else:
                self.fail(want["segment"], want["line"], "torn_tail", "torn last line not acknowledged by the next segment")
            self.pending_ack = None
        if self.expected_seq is None:
            v.first_seq = iseq if isinstance(iseq, int) else 0
            if iseq == 0 and iprev != GENESIS_HASH:
                self.fail(fname, n, "chain", "first record does not start from the genesis hash", rid, iseq)
                chain_ok = False
        else:
            ok_prev = {self.last_hash}
            ok_seq = {self.expected_seq}
            if self.failed_prev is not None:
                ok_prev.add(self.failed_prev[0])
                if isinstance(self.failed_prev[1], int):
                    ok_seq.add(self.failed_prev[1] + 1)
            if iprev not in ok_prev:
                self.fail(fname, n, "chain", "prev_hash does not match the previous record", rid, iseq)
                chain_ok = False
            elif iseq not in ok_seq:
                self.fail(fname, n, "chain", f"seq {iseq} where {self.expected_seq} was expected", rid, iseq)
                chain_ok = False
        self.failed_prev = None
        self.expected_seq = (iseq + 1) if isinstance(iseq, int) else None
        self.last_hash = computed
        leaf_index = len(v.leaves)
        # A checkpoint signs the root of the records *before* it: take it before adding its own leaf.
        self.root_before = self.frontier.root() if record.get("type") == "checkpoint" else None
        v.leaves.append(leaf_hash(data))
        self.frontier.append(v.leaves[-1])
        v.records.append(RecordInfo(fname, n, iseq, record.get("record_id"), record.get("type"), computed, record,
                                    True, chain_ok))
        if record.get("type") == "event" and record.get("kind") == "key_rotation" and ok:
            try:  # a rotation signed by a trusted key introduces its successor
                self.keys[record["new_key_id"]] = self._load_pem(record["new_public_pem"])
            except (KeyError, TypeError, ValueError):
                self.fail(fname, n, "schema", "key_rotation event without a usable public key", rid, iseq)
                ok = False
        if record.get("type") == "checkpoint":
            ok &= self.checkpoint(fname, n, record, leaf_index)
        if ok and chain_ok:
            v.valid += 1

    def _seed_any(self, env: dict[str, Any]) -> list[str]:
        results = [validate_seed_envelope(env, k) for k in self.seed_keys]
        return [] if any(not r for r in results) else results[0]

    def checkpoint(self, fname: str, n: int, rec: dict[str, Any], leaf_index: int) -> bool:
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


def trusted_keys(settings: Any = None, pubkeys: Iterable[Path] = ()) -> dict[str, Any]:
    """Public keys to trust: the installation's keyring plus any PEM files given."""
    from provenance.keys import key_id_of, keyring_for

    keys: dict[str, Any] = {}
    if settings is not None:
        try:
            keys.update(keyring_for(settings).public_keys())
        except (OSError, ValueError):
            pass
    for p in pubkeys:
        k = load_public_pem(Path(p).read_bytes())
        keys[key_id_of(k)] = k
    return keys


def verify_log(path: str | Path, keys: dict[str, Any] | None = None, seed_keys: list[Any] | None = None,
               settings: Any = None, workers: int | None = None,
               parallel_min_bytes: int | None = None, pool: Executor | None = None) -> Verification:
    """Verify a segment file or a provenance folder; returns a :class:`Verification`.

    ``workers`` processes check signatures (default: one per CPU; 1 = all in this process);
    the chain, Merkle and line checks stay sequential here, so the report is the same
    whatever the number. Logs smaller than ``parallel_min_bytes`` (default
    :data:`PARALLEL_MIN_BYTES` for the start method) are verified in-process. ``pool`` lends
    an executor of the caller's (reused across many verifications; ``workers`` is then only
    how many chunks to keep queued per worker, and the size threshold does not apply).
    """
    path = Path(path)
    if keys is None:
        keys = trusted_keys(settings)
    v = Verification(str(path))
    ver = _Verifier(keys, list(seed_keys or []), v)
    if path.is_dir():
        files = list_segments(path)
        folder = path
    elif path.is_file():
        files = [path]
        folder = path.parent
    else:
        from app.core.errors import SahayakError

        raise SahayakError(f"no provenance log at {path}")
    workers = default_workers() if workers is None else max(1, int(workers))
    method = _start_method()
    threshold = PARALLEL_MIN_BYTES[method] if parallel_min_bytes is None else parallel_min_bytes
    if pool is not None:
        ver.run(files, pool, workers)
    elif workers > 1 and sum(f.stat().st_size for f in files) >= threshold:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method)) as pool:
            ver.run(files, pool, workers)
    else:
        ver.run(files)
    if ver.pending_ack is not None:
        want = ver.pending_ack
        ver.fail(want["segment"], want["line"], "torn_tail", "torn last line not acknowledged")
    _check_head(ver, folder, files, path.is_dir())
    if len(v.checkpoints) >= 2 and not v.first_seq:
        # One RFC 9162 consistency proof from the first to the last checkpoint, checked.
        a, b = v.checkpoints[0], v.checkpoints[-1]
        proof = consistency_proof(a["tree_size"], v.leaves[: b["tree_size"]])
        if verify_consistency(a["tree_size"], b["tree_size"], bytes.fromhex(a["root_hash"]),
                              bytes.fromhex(b["root_hash"]), proof):
            v.consistency_verified = 1
        else:
            ver.fail(b["file"], b["line"], "checkpoint", "checkpoints are not consistent with each other")
    return v


def _check_head(ver: _Verifier, folder: Path, files: list[Path], whole: bool) -> None:
    """Lines cut from the end: the signed HEAD names a checkpoint the log must contain."""
    head = read_head(folder)
    if not head or not files:
        return
    if not whole and head.get("segment") != files[-1].name:
        return
    v = ver.v
    try:
        env = json.loads(head["checkpoint"])
        inner = json.loads(env["signed_data"])
        key = ver.keys.get(inner["key_id"])
        if key is None or not verify_signature(key, env["signed_data"].encode(), b64d(env["signature"])):
            ver.fail(HEAD_NAME, 1, "signature", "signed head does not verify")
            return
    except (KeyError, ValueError, TypeError) as exc:
        ver.fail(HEAD_NAME, 1, "parse", f"unreadable head: {exc}")
        return
    head_seq = inner["seq"]
    found = next((r for r in v.records if r.seq == head_seq), None)
    if found is None:
        last = v.records[-1] if v.records else None
        line = (last.line + 1) if last else 1
        fname = files[-1].name
        if not any(f.kind == "torn_tail" for f in v.failures) and not _gap_reported(v, head_seq):
            ver.fail(fname, line, "truncated", f"log ends at seq {last.seq if last else -1} but the signed head "
                     f"has a checkpoint at seq {head_seq}: records were cut from the end")
    elif found.hash != env["hash"]:
        ver.fail(found.file, found.line, "checkpoint", "record at the head's position differs from the signed head")


def _gap_reported(v: Verification, head_seq: int) -> bool:
    # A deletion inside the log already shifts every later seq; the head is then simply beyond it.
    return any(f.kind in ("chain", "signature", "parse") for f in v.failures) and \
        any(r.seq is not None and r.seq >= head_seq - 1 for r in v.records)


# ---------------------------------------------------------------------------------------
# proofs
# ---------------------------------------------------------------------------------------
def prove_inclusion(folder: str | Path, record_id: str, settings: Any = None,
                    keys: dict[str, Any] | None = None) -> dict[str, Any]:
    """Inclusion proof of one record in the latest checkpoint that covers it, verified."""
    from app.core.errors import SahayakError

    v = verify_log(folder, keys=keys, settings=settings)
    rec = next((r for r in v.records if r.record_id == record_id or r.record.get("turn_id") == record_id), None)
    if rec is None:
        raise SahayakError(f"record {record_id} is not in the log at {folder}")
    index = rec.seq - v.first_seq
    cp = next((c for c in reversed(v.checkpoints) if c["tree_size"] > index), None)
    if cp is None:
        raise SahayakError(f"record {record_id} is not covered by a checkpoint yet; run `sahayak provenance flush`")
    size = cp["tree_size"]
    proof = inclusion_proof(index, v.leaves[:size])
    ok = verify_inclusion(index, size, v.leaves[index], proof, bytes.fromhex(cp["root_hash"]))
    return {
        "record_id": rec.record_id, "type": rec.type, "seq": rec.seq, "file": rec.file, "line": rec.line,
        "leaf_hash": v.leaves[index].hex(), "tree_size": size, "root_hash": cp["root_hash"],
        "checkpoint": {"record_id": cp["record_id"], "file": cp["file"], "line": cp["line"]},
        "proof": [p.hex() for p in proof], "verified": ok, "log_ok": v.ok,
    }


def prove_consistency(folder: str | Path, old_size: int, new_size: int | None = None, settings: Any = None,
                      keys: dict[str, Any] | None = None) -> dict[str, Any]:
    """Consistency proof between two checkpoints of the log (by tree size), verified."""
    from app.core.errors import SahayakError

    v = verify_log(folder, keys=keys, settings=settings)
    sizes = {c["tree_size"]: c for c in v.checkpoints}
    new_size = new_size or (v.checkpoints[-1]["tree_size"] if v.checkpoints else 0)
    if old_size not in sizes or new_size not in sizes:
        raise SahayakError(f"no checkpoints of size {old_size} and {new_size}; have {sorted(sizes)}")
    proof = consistency_proof(old_size, v.leaves[:new_size])
    ok = verify_consistency(old_size, new_size, bytes.fromhex(sizes[old_size]["root_hash"]),
                            bytes.fromhex(sizes[new_size]["root_hash"]), proof)
    return {"old_size": old_size, "new_size": new_size, "old_root": sizes[old_size]["root_hash"],
            "new_root": sizes[new_size]["root_hash"], "proof": [p.hex() for p in proof], "verified": ok}
