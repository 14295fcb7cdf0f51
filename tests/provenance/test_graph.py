"""Graph import against the real embedded Bolt server (ArcadeDB), started once per session."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from app.ops.graph import start_graph_server
from provenance import dataset_hash
from provenance.graph import CURSOR_NAME, ContinuousImporter, Cursor, Importer, LogVerificationError
from tests.provenance.conftest import turn_fields

pytestmark = pytest.mark.graph


def _fill(tracker, n: int, sessions: int = 4, start: int = 0) -> None:
    for i in range(start, start + n):
        tracker.record_turn(**turn_fields(i, session=f"s{i % sessions}", model_versions={"intent": "intents-frozen@1"}))


def _forge_line(tracker, index: int) -> bytes:
    """Change the intent on line ``index`` (0-based) of the first segment; return the original bytes."""
    seg = sorted(tracker.folder.glob("segment-*.jsonl"))[0]
    good = seg.read_bytes()
    lines = good.split(b"\n")
    lines[index] = lines[index].replace(b"Transfer_Money", b"Transfer_Monex")
    seg.write_bytes(b"\n".join(lines))
    return good


def test_import_is_verified_batched_and_idempotent(graph, make_tracker, tmp_path: Path) -> None:
    t = make_tracker(checkpoint_every=20)
    data = tmp_path / "train.yaml"
    data.write_text("examples: [a, b]\n")
    h = dataset_hash(data)
    t.record_dataset(data, "intent training set", sha256=h)
    t.record_model("intents-frozen", "1", hyperparameters={"C": 1.0}, metrics={"f1": 0.9}, dataset_hashes=[h])
    _fill(t, 60)
    t.record_event("handoff", session_id="s1", staff="meera", reason="wants a person")
    t.flush(timeout=30)
    imp = Importer(graph, batch_size=25)
    try:
        assert imp.run_once() > 60
        first = imp.counts()
        assert first["Turn"] == 60 and first["Session"] == 4 and first["Dataset"] == 1 and first["Event"] == 1
        assert first["GENERATED"] == 60 and first["RETRIEVED"] == 60 and first["NEXT"] == 56
        assert first["USED_IN"] == 1 and first["IN_SESSION"] == 61
        assert imp.run_once() == 0  # nothing new
        imp.reset_cursor()
        assert imp.run_once() > 60  # everything again...
        assert imp.counts() == first  # ...and the graph is unchanged
    finally:
        imp.close()


def test_import_refuses_a_tampered_log(graph, make_tracker) -> None:
    t = make_tracker(checkpoint_every=100)
    _fill(t, 10)
    t.close()
    _forge_line(t, 6)
    imp = Importer(graph, batch_size=100)
    try:
        with pytest.raises(LogVerificationError, match=r":7: signature"):
            imp.run_once()
        assert imp.counts()["Turn"] == 0  # the batch with the bad line was never written
    finally:
        imp.close()


def test_graph_outage_loses_nothing(bolt_server, graph, make_tracker) -> None:
    """Stop the real server mid-run while turns keep coming; restart; the importer catches up."""
    t = make_tracker(checkpoint_every=50)
    cont = ContinuousImporter(graph, interval=0.2).start()
    stop_writing = threading.Event()
    written = [0]

    def writer() -> None:
        i = 0
        while not stop_writing.is_set() and i < 600:  # bounded: ~100 turns/s for up to 6 s
            t.record_turn(**turn_fields(10_000 + i, session=f"o{i % 5}"))
            i += 1
            written[0] = i
            time.sleep(0.01)

    th = threading.Thread(target=writer)
    th.start()
    try:
        time.sleep(1.0)
        before = written[0]
        bolt_server.server.stop()  # outage
        noticed = time.monotonic() + 30
        while cont.last_error is None and time.monotonic() < noticed:
            time.sleep(0.2)
        assert cont.last_error is not None  # the importer noticed
        assert written[0] > before  # and the chat kept writing provenance meanwhile
        bolt_server.server = start_graph_server(graph, data_dir=bolt_server.data_dir, reuse=False, timeout=180)
        time.sleep(1.0)
    finally:
        stop_writing.set()
        th.join()
        t.flush(timeout=30)
    deadline = time.monotonic() + 90
    imp = Importer(graph)
    try:
        while time.monotonic() < deadline:
            try:
                if imp.counts()["Turn"] == written[0]:
                    break
            except Exception:  # noqa: BLE001 - the server may still be warming up
                pass
            time.sleep(0.5)
        cont.stop()
        imp.run_once()  # whatever the background thread had not reached yet
        assert imp.counts()["Turn"] == written[0] > 150
    finally:
        cont.stop()
        imp.close()


def test_import_continues_across_an_acknowledged_torn_segment(graph, make_tracker) -> None:
    t1 = make_tracker(checkpoint_every=100)
    _fill(t1, 5)
    t1.close()
    seg = sorted(t1.folder.glob("segment-*.jsonl"))[0]
    with open(seg, "ab") as fh:
        fh.write(b'{"alg":"ed25519","hash":"to')  # a crash mid-line
    imp = Importer(graph)
    try:
        assert imp.run_once() == 6  # 5 turns + checkpoint; the torn bytes are not imported
        t2 = make_tracker(checkpoint_every=100)
        _fill(t2, 4, start=5)
        t2.close()
        assert imp.run_once() == 1 + 1 + 4 + 1  # torn_segment event + its checkpoint, 4 turns, closing checkpoint
        c = imp.counts()
        assert c["Turn"] == 9 and c["Event"] == 1
    finally:
        imp.close()


def test_import_keeps_the_batches_before_a_bad_line(graph, make_tracker) -> None:
    """Batches are read ahead on a thread; a bad line still stops the import right after the
    last good batch, with the cursor there, and a repaired log then imports the rest."""
    t = make_tracker(checkpoint_every=1000)
    _fill(t, 20)
    t.close()
    seg = sorted(t.folder.glob("segment-*.jsonl"))[0]
    good = _forge_line(t, 12)
    imp = Importer(graph, batch_size=5)
    try:
        with pytest.raises(LogVerificationError, match=r":13: signature"):
            imp.run_once()
        assert imp.counts()["Turn"] == 10  # batches 1-2 committed, the one holding line 13 not
        cur = Cursor.load(t.folder / CURSOR_NAME)
        assert (cur.line, cur.next_seq, cur.imported) == (10, 10, 10)
        seg.write_bytes(good)
        assert imp.run_once() == 11  # the other 10 turns and the closing checkpoint
        assert imp.counts()["Turn"] == 20 and imp.counts()["NEXT"] == 16
    finally:
        imp.close()


def test_import_follows_a_key_rotation_across_batches(graph, make_tracker) -> None:
    t = make_tracker(checkpoint_every=1000)
    _fill(t, 6)
    res = t.rotate_key()
    _fill(t, 6, start=6)
    t.close()
    imp = Importer(graph, batch_size=4)
    try:
        lines = sum(len(p.read_bytes().splitlines()) for p in t.folder.glob("segment-*.jsonl"))
        assert imp.run_once() == lines  # turns, checkpoints and the rotation event, signed by either key
        assert imp.counts()["Turn"] == 12 and imp.counts()["Event"] == 1
        assert res["new_key_id"] in Cursor.load(t.folder / CURSOR_NAME).learned_keys
    finally:
        imp.close()
