"""The background writer thread: batches queued records, signs, chains and appends them.

One writer per :class:`~provenance.tracker.Tracker`. It takes work items off a queue in
batches, builds each record (redaction and pseudonymisation happen in the item's ``build``),
seals it (signature, hash chain, Merkle leaf), appends the batch to the current JSONL
segment in one write, rotates segments by size and day, and writes a signed Merkle
checkpoint every ``checkpoint_every`` records (fsync + ``HEAD.json``) and on a flush.

Several processes may write one log (the chat server, a training command, `sahayak turn`): each
batch is appended under an exclusive ``flock`` on ``.writer.lock`` in the log folder, and a writer
that finds the log grown or rotated by someone else since its own last write re-reads the chain
state first, so the records of all processes form one chain.

A write that fails is rolled back and retried; the chain state is then re-read from disk
(:func:`provenance.recovery.scan_tail`), which is also where a torn tail left by a crash is
found and acknowledged with a signed ``torn_segment`` event.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import queue
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from app.core.fsutil import fsync_dir
from provenance.keys import KeyRing, Signer, public_pem
from provenance.log import list_segments, segment_counter, segment_name, write_head
from provenance.records import base_record, new_record_id, seal
from provenance.recovery import ChainState, scan_tail

log = logging.getLogger(__name__)

#: Most items taken off the queue in one batch.
MAX_BATCH = 2000
LOCK_NAME = ".writer.lock"


class WorkItem:
    """One thing for the writer to do: write a record, flush, rotate the key, or stop."""

    __slots__ = ("kind", "record_id", "build", "event", "payload")

    def __init__(self, kind: str, record_id: str | None = None, build: Callable[[], dict] | None = None,
                 event: threading.Event | None = None, payload: Any = None) -> None:
        self.kind = kind  # record | flush | rotate | stop
        self.record_id = record_id
        self.build = build
        self.event = event
        self.payload = payload


class Writer:
    """The writer thread and everything only it touches (segment file, chain state, signer).

    ``put`` starts the thread on demand; ``stop`` ends it (a later ``put`` starts it again).
    ``error`` holds the last write failure (None once a batch is written again) and
    ``pending`` the records that a failure left unwritten, in order.
    """

    def __init__(self, folder: Path, keyring: KeyRing, algorithm: str, checkpoint_every: int,
                 rotate_bytes: int) -> None:
        self.folder = folder
        self.algorithm = algorithm
        self.checkpoint_every = checkpoint_every
        self.rotate_bytes = rotate_bytes
        self._keyring = keyring
        self._signer: Signer | None = None
        self._q: queue.Queue[WorkItem] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.pending: list[WorkItem] = []
        self.state: ChainState | None = None
        self._fh: Any = None
        self._day: str | None = None
        self.records_written = 0

    # --- the thread ---------------------------------------------------------------------
    def put(self, item: WorkItem) -> None:
        """Queue ``item`` (starting the thread if it is not running)."""
        self._ensure_thread()
        self._q.put(item)

    def queued(self) -> int:
        """Items waiting on the queue."""
        return self._q.qsize()

    def running_thread(self) -> threading.Thread | None:
        """The writer thread when it is alive, else None."""
        with self._lock:
            thread = self._thread
        return thread if thread is not None and thread.is_alive() else None

    def stop(self, thread: threading.Thread, timeout: float | None) -> None:
        """Ask the writer to stop after what is queued, and wait up to ``timeout`` for ``thread``."""
        self._q.put(WorkItem("stop", event=threading.Event()))
        thread.join(timeout)

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="provenance-writer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                first = self._q.get(timeout=1.0 if self.pending else None)
            except queue.Empty:
                self._process([])  # retry records a write error left pending
                continue
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._q.get_nowait())
                except queue.Empty:
                    break
            stop = self._process(batch)
            if stop:
                return

    def _process(self, batch: list[WorkItem]) -> bool:
        waiters: list[WorkItem] = []
        rotations: list[WorkItem] = []
        stop = False
        for it in batch:
            if it.kind == "record":
                self.pending.append(it)
            elif it.kind == "flush":
                waiters.append(it)
            elif it.kind == "rotate":
                rotations.append(it)
            elif it.kind == "stop":
                stop = True
                waiters.append(it)
        try:
            with self._exclusive():
                self._process_locked(rotations, waiters, stop)
            self.error = None
        except Exception as exc:  # noqa: BLE001 - disk full, permissions, damage: surface, retry later
            if self.error is None or str(self.error) != str(exc):
                log.error("provenance writer: %s", exc)
            self.error = exc
            self._drop_file()
        finally:
            for it in waiters + rotations:
                if it.event is not None:
                    it.event.set()
        if stop:
            self._drop_file()
        return stop

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Hold the log's inter-process write lock (only one process appends at a time)."""
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _sync_with_disk(self) -> None:
        """Forget the chain state if another process appended or rotated since this one's last write."""
        if self.state is None or self._fh is None:
            return
        segs = list_segments(self.folder)
        try:
            changed = not segs or segs[-1] != self.state.segment or segs[-1].stat().st_size != self._fh.tell()
        except OSError:
            changed = True
        if changed:
            self._drop_file()

    def _process_locked(self, rotations: list[WorkItem], waiters: list[WorkItem], stop: bool) -> None:
        """The write path proper, run under the inter-process lock."""
        self._sync_with_disk()
        self._open()
        self._write_pending()
        for rot in rotations:
            try:
                rot.payload["result"] = self._rotate(rot.payload["alg"])
            except Exception as exc:  # noqa: BLE001 - reported to the caller
                rot.payload["error"] = exc
                raise
        if waiters or stop:
            self._checkpoint(force=False, durable=True)

    # --- segments -----------------------------------------------------------------------
    def _drop_file(self) -> None:
        if self._fh is not None:
            try:
                self._fh.close()
            except OSError:
                pass
        self._fh = None
        self.state = None  # re-read from disk before the next write

    def _signer_now(self) -> Signer:
        if self._signer is None:
            self._signer = self._keyring.active(self.algorithm)
        return self._signer

    def _open(self) -> None:
        """Make sure the chain state is known and a segment is open for appending."""
        if self.state is not None and self._fh is not None:
            return
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = scan_tail(self.folder)
        self.pending = [it for it in self.pending if it.record_id not in st.seen_ids]
        self.state = st
        self._signer_now()
        if st.torn is not None or st.segment is None:
            self._new_segment()
            if st.torn is not None:
                torn, st.torn = st.torn, None
                self._append([self.build_event("torn_segment", **torn, last_valid_seq=st.seq - 1,
                                               last_valid_hash=st.last_hash)])
                self._checkpoint(force=True, durable=True)
        else:
            self._open_segment(st.segment)

    def _open_segment(self, path: Path) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        # Unbuffered: each batch is one write we can roll back if it fails (see _write_all).
        self._fh = os.fdopen(fd, "ab", buffering=0)
        self.state.segment = path
        self._day = datetime.now(timezone.utc).strftime("%Y%m%d")

    def _new_segment(self) -> None:
        st = self.state
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            self._fh = None
        segs = list_segments(self.folder)
        counter = segment_counter(segs[-1]) + 1 if segs else 1
        day = datetime.now(timezone.utc).strftime("%Y%m%d")
        path = self.folder / segment_name(counter, day)
        self._open_segment(path)
        st.lines_in_segment = 0
        fsync_dir(self.folder)

    def _maybe_rotate_segment(self) -> None:
        today = datetime.now(timezone.utc).strftime("%Y%m%d")
        if self._fh.tell() >= self.rotate_bytes or today != self._day:
            if self._fh.tell() > 0:
                self._new_segment()

    # --- records ------------------------------------------------------------------------
    @staticmethod
    def build_event(kind: str, **fields: Any) -> dict:
        """A system event record the writer itself adds (torn segment, key rotation, record error)."""
        rec = base_record("event", new_record_id())
        rec.update(fields)
        rec["kind"] = kind
        return rec

    def _append(self, records: list[dict]) -> None:
        """Seal records in order and write them (one write call per batch)."""
        st = self.state
        signer = self._signer_now()
        out: list[str] = []
        for rec in records:
            line, h, leaf = seal(rec, st.seq, st.last_hash, signer)
            out.append(line)
            st.frontier.append(leaf)
            st.seq += 1
            st.last_hash = h
            st.since_checkpoint += 1
        data = ("\n".join(out) + "\n").encode("utf-8") if out else b""
        if data:
            self._write_all(data)
            st.lines_in_segment += len(out)
            self.records_written += len(out)

    def _write_pending(self) -> None:
        while self.pending:
            # Rotate only when there is something to write, so no empty segment is ever left behind.
            self._maybe_rotate_segment()
            chunk = self.pending[: max(1, self.checkpoint_every - self.state.since_checkpoint)]
            records = []
            for it in chunk:
                try:
                    records.append(it.build())
                except Exception as exc:  # noqa: BLE001 - an unbuildable record is itself recorded
                    records.append(self.build_event("record_error", failed_record_id=it.record_id,
                                                    error=f"{type(exc).__name__}: {exc}"))
            self._append(records)
            del self.pending[: len(chunk)]
            if self.state.since_checkpoint >= self.checkpoint_every:
                self._checkpoint(force=True, durable=True)

    def _write_all(self, data: bytes) -> None:
        """Append ``data`` completely, or roll the file back to where it was and raise.

        A write this process *knows* failed (disk full, I/O error) is undone, so it never
        leaves a torn line behind; its records stay pending and are retried, and the chain
        state is re-read from disk. A torn line left by a crash is different: it is found
        and reported at the next start (scan_tail), never silently removed.
        """
        start = self._fh.seek(0, os.SEEK_END)
        try:
            view = memoryview(data)
            while view:
                view = view[self._fh.write(view):]
        except OSError:
            try:
                os.ftruncate(self._fh.fileno(), start)
            except OSError:
                pass
            raise

    # --- checkpoints and keys -----------------------------------------------------------
    def _checkpoint(self, force: bool, durable: bool) -> None:
        """Append a signed checkpoint over every record so far, fsync, and update HEAD."""
        st = self.state
        if st is None or self._fh is None:
            return
        if not force and st.since_checkpoint == 0:
            if durable:
                self._fh.flush()
                os.fsync(self._fh.fileno())
            return
        rec = base_record("checkpoint", new_record_id())
        rec.update({
            "tree_size": st.seq,
            "root_hash": st.frontier.root().hex(),
            "prev_tree_size": (st.last_checkpoint or {}).get("tree_size"),
            "prev_root_hash": (st.last_checkpoint or {}).get("root_hash"),
        })
        line, h, leaf = seal(rec, st.seq, st.last_hash, self._signer_now())
        self._write_all(line.encode("utf-8") + b"\n")
        os.fsync(self._fh.fileno())
        st.frontier.append(leaf)
        st.seq += 1
        st.last_hash = h
        st.lines_in_segment += 1
        st.since_checkpoint = 0
        st.last_checkpoint = {"tree_size": rec["tree_size"], "root_hash": rec["root_hash"]}
        self.records_written += 1
        write_head(self.folder, {
            "checkpoint": line, "segment": st.segment.name, "line": st.lines_in_segment,
            "offset": self._fh.tell(), "next_seq": st.seq, "last_hash": st.last_hash,
            "frontier": st.frontier.to_json(), "tree_size": rec["tree_size"], "root_hash": rec["root_hash"],
        })

    def _rotate(self, alg: str) -> dict[str, Any]:
        old = self._signer_now()
        new = self._keyring.generate(alg)
        # Signed by the old key: whoever trusts it learns the new public key from the log itself.
        self._append([self.build_event("key_rotation", old_key_id=old.key_id, new_key_id=new.key_id,
                                       new_alg=new.alg, new_public_pem=public_pem(new.public_key))])
        self._signer = new
        self._checkpoint(force=True, durable=True)
        return {"old_key_id": old.key_id, "new_key_id": new.key_id, "alg": new.alg}
