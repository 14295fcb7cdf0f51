"""Offline verification of a provenance log (a segment file or the whole folder).

Every line is checked for: JSON shape and schema (``schema``/``parse``), ``hash`` =
SHA-256(``signed_data``) and top-level copies equal to the signed ones (``hash``/``schema``),
signature by a trusted key (``signature``), place in the chain (``chain``: ``prev_hash`` and
``seq`` continue the last genuine record), and every checkpoint's Merkle root over the
records before it (``checkpoint``). A torn last line is a ``torn_tail`` failure unless the
next segment starts with a signed ``torn_segment`` event that names it (then a warning).
Lines cut from the end are found through the signed head (``truncated``). The per-line
checks are :class:`provenance.checks.LineChecker`; proofs are in :mod:`provenance.proofs`.

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
from pathlib import Path
from typing import Any, Iterable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import load_der_public_key

from app.core.errors import SahayakError
from provenance.canonical import b64d
from provenance.checks import (
    CheckedLine,
    Failure,
    LineChecker,
    RecordInfo,
    Verification,
    parse_line,
    seal_seed,
    signature_valid,
    stream_lines,
    validate_seed_envelope,
)
from provenance.keys import key_id_of, keyring_for, load_public_pem, verify_signature
from provenance.log import HEAD_NAME, list_segments, read_head
from provenance.merkle import consistency_proof, verify_consistency

# Re-exported: the report types and seed-envelope helpers are part of this module's API.
__all__ = ["CHUNK_LINES", "PARALLEL_MIN_BYTES", "Failure", "RecordInfo", "Verification", "default_workers",
           "seal_seed", "trusted_keys", "validate_seed_envelope", "verify_log"]

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
    keys = []
    for der in keys_der:
        key = _WORKER_KEYS.get(der)
        if key is None:
            key = _WORKER_KEYS[der] = load_der_public_key(der)
        keys.append(key)
    return bytes(signature_valid(keys[i], data, sig) for i, data, sig in tasks)


def _start_method() -> str:
    """``fork`` when this process runs one thread (fast, and safe then); ``forkserver`` otherwise,
    since forking a threaded process (a web server, a tracker's writer) can copy a held lock."""
    return "fork" if threading.active_count() == 1 else "forkserver"


def default_workers() -> int:
    """Worker processes used when the caller does not say: one per CPU."""
    return os.cpu_count() or 1


class _Verifier(LineChecker):
    """The sequential checks, fed either line by line or chunk by chunk with worker answers."""

    def __init__(self, keys: dict[str, Any], seed_keys: list[Any], v: Verification) -> None:
        super().__init__(keys, seed_keys, v)
        # Parallel mode: keys a line *may* be checked with (trusted keys plus every rotation seen
        # so far, genuine or not), and their DER encodings for the workers.
        self._candidates = dict(keys)
        self._der: list[bytes] = []
        self._der_index: dict[int, int] = {}
        self._der_keys: list[Any] = []  # keeps the keys alive, so their id()s stay unique

    def run(self, files: list[Path], pool: Any = None, workers: int = 1) -> None:
        """Verify ``files`` in order; with ``pool``, signatures are checked by its workers a few
        chunks ahead of the sequential pass, which uses their answers (identical results)."""
        if pool is None:
            for item in stream_lines(files):
                if isinstance(item, Path):
                    self.start_file(item)
                else:
                    parse_line(item)
                    self.one(item)
            return
        pending: deque[tuple[list, Any, list[CheckedLine]]] = deque()
        chunk: list[Path | CheckedLine] = []
        lines = 0
        for item in stream_lines(files):
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

    def _submit(self, pool: Any, chunk: list[Path | CheckedLine], pending: deque) -> Any:
        """Parse a chunk here and hand its signature checks to the pool; returns the pool, or None
        once it has broken (the remaining lines are then checked in this process)."""
        tasks: list[tuple[int, bytes, Any]] = []
        checked: list[CheckedLine] = []
        for ln in chunk:
            if isinstance(ln, Path):
                continue
            parse_line(ln)
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
        i = self._der_index.get(id(key))
        if i is None:
            i = self._der_index[id(key)] = len(self._der)
            self._der.append(key.public_bytes(serialization.Encoding.DER,
                                              serialization.PublicFormat.SubjectPublicKeyInfo))
            self._der_keys.append(key)
        return i

    def _consume(self, chunk: list[Path | CheckedLine], future: Any, checked: list[CheckedLine]) -> None:
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


# ---------------------------------------------------------------------------------------
# the whole log
# ---------------------------------------------------------------------------------------
def trusted_keys(settings: Any = None, pubkeys: Iterable[Path] = ()) -> dict[str, Any]:
    """Public keys to trust: the installation's keyring plus any PEM files given."""
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


def _log_files(path: Path) -> tuple[list[Path], Path]:
    """The segment files to verify and the folder holding HEAD (SahayakError if there is no log)."""
    if path.is_dir():
        return list_segments(path), path
    if path.is_file():
        return [path], path.parent
    raise SahayakError(f"no provenance log at {path}")


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
    files, folder = _log_files(path)
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
    _check_consistency(ver)
    return v


def _check_consistency(ver: _Verifier) -> None:
    """One RFC 9162 consistency proof from the first to the last checkpoint, checked."""
    v = ver.v
    if len(v.checkpoints) < 2 or v.first_seq:
        return
    a, b = v.checkpoints[0], v.checkpoints[-1]
    proof = consistency_proof(a["tree_size"], v.leaves[: b["tree_size"]])
    if verify_consistency(a["tree_size"], b["tree_size"], bytes.fromhex(a["root_hash"]),
                          bytes.fromhex(b["root_hash"]), proof):
        v.consistency_verified = 1
    else:
        ver.fail(b["file"], b["line"], "checkpoint", "checkpoints are not consistent with each other")


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
