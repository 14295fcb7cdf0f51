"""The tracker: background writing, durability, crash recovery, keys and health."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from provenance import ProvenanceError, dataset_hash
from provenance.keys import keyring_for
from provenance.verify import seal_seed, validate_seed_envelope, verify_log
from tests.provenance.conftest import turn_fields


def _records(folder: Path) -> list[dict]:
    out = []
    for seg in sorted(folder.glob("segment-*.jsonl")):
        for line in seg.read_bytes().split(b"\n"):
            if line.strip():
                try:
                    out.append(json.loads(json.loads(line)["signed_data"])["record"])
                except ValueError:
                    pass
    return out


def test_record_turn_returns_immediately_and_is_redacted_and_pseudonymised(make_tracker) -> None:
    t = make_tracker()
    rid = t.record_turn(**turn_fields(1, session="sess-secret", user="asha"))
    t.flush(timeout=10)
    recs = [r for r in _records(t.folder) if r["type"] == "turn"]
    assert [r["record_id"] for r in recs] == [rid]
    r = recs[0]
    assert r["turn_id"] == "turn-1" and r["schema_version"] == "2.0"
    assert r["timestamp"].endswith("+00:00")
    text = json.dumps(r)
    # Raw identifiers and the phone number never reach the log.
    assert "sess-secret" not in text and '"asha"' not in text and "9876543210" not in text
    assert r["session"].startswith("s_") and r["user"].startswith("u_")
    assert r["session"] == t.pseudonym("sess-secret", "s_")  # stable pseudonym
    assert r["passages"][0]["chunk_id"] == "fees#1" and r["passages"][0]["scores"]["rerank"] == 0.93
    assert len(r["prompt_hash"]) == 64


def test_many_threads_lose_nothing(make_tracker) -> None:
    t = make_tracker(checkpoint_every=50)
    ids: list[str] = []
    lock = threading.Lock()

    def worker(k: int) -> None:
        mine = [t.record_turn(**turn_fields(k * 1000 + i, session=f"s{k}")) for i in range(150)]
        with lock:
            ids.extend(mine)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    t.flush(timeout=60)
    written = [r["record_id"] for r in _records(t.folder) if r["type"] == "turn"]
    assert sorted(written) == sorted(ids) and len(ids) == 1200
    v = verify_log(t.folder, settings=t.settings)
    assert v.ok and v.checkpoints_verified >= 24


def test_close_then_new_process_continues_the_chain(make_tracker) -> None:
    t1 = make_tracker(checkpoint_every=7)
    for i in range(10):
        t1.record_turn(**turn_fields(i))
    t1.close()
    t2 = make_tracker(checkpoint_every=7)  # a fresh process: state comes from HEAD + log tail
    for i in range(10, 20):
        t2.record_turn(**turn_fields(i))
    t2.close()
    v = verify_log(t2.folder, settings=t2.settings)
    assert v.ok, v.report()["failures"]
    assert [r.seq for r in v.records] == list(range(len(v.records)))


def test_recovery_without_head_rescans_the_log(make_tracker) -> None:
    t1 = make_tracker(checkpoint_every=5)
    for i in range(12):
        t1.record_turn(**turn_fields(i))
    t1.close()
    (t1.folder / "HEAD.json").unlink()
    t2 = make_tracker(checkpoint_every=5)
    t2.record_event("restart")
    t2.close()
    assert verify_log(t2.folder, settings=t2.settings).ok


def test_torn_tail_is_reported_and_the_chain_continues_in_a_new_segment(make_tracker) -> None:
    t1 = make_tracker(checkpoint_every=100)
    for i in range(6):
        t1.record_turn(**turn_fields(i))
    t1.close()
    seg = sorted(t1.folder.glob("segment-*.jsonl"))[0]
    # Simulate a crash in the middle of writing the next record.
    torn = b'{"alg":"ed25519","hash":"abc","signed_data":"{\\"record\\":{\\"turn_id\\"'
    with open(seg, "ab") as fh:
        fh.write(torn)
    before = seg.read_bytes()
    v = verify_log(t1.folder, settings=t1.settings)
    assert not v.ok and v.failures[0].kind == "torn_tail" and v.failures[0].line == 8

    t2 = make_tracker(checkpoint_every=100)
    t2.record_turn(**turn_fields(99))
    t2.close()
    assert seg.read_bytes() == before  # the torn bytes are kept, never "fixed"
    segs = sorted(t2.folder.glob("segment-*.jsonl"))
    assert len(segs) == 2
    first = json.loads(json.loads(segs[1].read_bytes().split(b"\n")[0])["signed_data"])["record"]
    assert first["kind"] == "torn_segment" and first["segment"] == seg.name and first["line"] == 8
    assert first["length"] == len(torn)
    v2 = verify_log(t2.folder, settings=t2.settings)
    assert v2.ok, v2.report()["failures"]
    assert v2.warnings and v2.warnings[0]["kind"] == "torn_tail" and v2.warnings[0]["line"] == 8
    assert any(r.record.get("turn_id") == "turn-99" for r in v2.records)


def test_unwritable_log_folder_is_surfaced(make_tracker, fresh_home: Path) -> None:
    # A file where the provenance folder should be: every write fails (even as root).
    (fresh_home / "provenance").write_text("not a folder")
    t = make_tracker()
    assert not t.healthy()
    t.record_turn(**turn_fields(1))
    with pytest.raises(ProvenanceError):
        t.flush(timeout=10)
    assert not t.healthy() and t.last_error
    # Once the disk problem is fixed, the pending record is written and health returns.
    (fresh_home / "provenance").unlink()
    t.flush(timeout=10)
    assert t.healthy()
    assert [r["turn_id"] for r in _records(t.folder) if r["type"] == "turn"] == ["turn-1"]


def test_keys_are_private_and_rotation_keeps_old_records_verifiable(make_tracker) -> None:
    t = make_tracker(checkpoint_every=5)
    for i in range(6):
        t.record_turn(**turn_fields(i))
    res = t.rotate_key()
    for i in range(6, 12):
        t.record_turn(**turn_fields(i))
    t.close()
    kdir = t.settings.keys_dir / "provenance"
    assert stat.S_IMODE(kdir.stat().st_mode) == 0o700
    for f in kdir.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    assert stat.S_IMODE((t.settings.keys_dir / "pseudonym.key").stat().st_mode) == 0o600
    v = verify_log(t.folder, settings=t.settings)
    assert v.ok and v.keys_used == {res["old_key_id"], res["new_key_id"]}
    rot = [r for r in v.records if r.record.get("kind") == "key_rotation"][0]
    assert rot.record["new_key_id"] == res["new_key_id"]
    # A verifier that only trusts the original key learns the new one from the signed rotation event.
    only_old = {res["old_key_id"]: keyring_for(t.settings).public_keys()[res["old_key_id"]]}
    assert verify_log(t.folder, keys=only_old).ok
    # ...and one that trusts nothing rejects everything.
    assert not verify_log(t.folder, keys={}).ok


def test_rsa_pss_signing(make_tracker) -> None:
    t = make_tracker(signing_algorithm="rsa-pss", checkpoint_every=4)
    for i in range(5):
        t.record_turn(**turn_fields(i))
    t.close()
    v = verify_log(t.folder, settings=t.settings)
    assert v.ok and {r.record["type"] for r in v.records} >= {"turn", "checkpoint"}
    line = sorted(t.folder.glob("segment-*.jsonl"))[0].read_text().splitlines()[0]
    assert json.loads(line)["alg"] == "rsa-pss"


def test_seed_1_1_envelopes_validate_with_rsa_public_key(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rec = {"type": "inference", "model": "intent-v1", "input": "balance?", "output": "₹12,000", "timestamp": "2024-01-01T00:00:00+00:00"}
    line = seal_seed(rec, key)
    assert validate_seed_envelope(line, key.public_key()) == []
    env = json.loads(line)
    env["signed_data"] = env["signed_data"].replace("12,000", "99,000")
    assert any("signature" in p for p in validate_seed_envelope(env, key.public_key()))
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert validate_seed_envelope(line, other.public_key())
    # A seed log file: verified line by line with the given key; a tampered line is named.
    log = tmp_path / "seed.jsonl"
    lines = [seal_seed(dict(rec, n=i), key) for i in range(4)]
    bad = json.loads(lines[2])
    bad["signed_data"] = bad["signed_data"].replace('"n":2', '"n":7')
    lines[2] = json.dumps(bad)
    log.write_text("\n".join(lines) + "\n")
    v = verify_log(log, keys={}, seed_keys=[key.public_key()])
    assert v.seed_envelopes == 4 and v.valid == 3
    assert [(f.line, f.kind) for f in v.failures] == [(3, "signature")]


def test_model_and_dataset_records(make_tracker, tmp_path: Path) -> None:
    data = tmp_path / "intents.yaml"
    data.write_text("Check_Balance:\n  - what is my balance\n")
    t = make_tracker()
    h = dataset_hash(data)
    t.record_dataset(data, "intent examples", sha256=h)
    t.record_model("intents-frozen", "1", hyperparameters={"C": 1.0}, metrics={"macro_f1": 0.93}, dataset_hashes=[h])
    t.close()
    recs = {r["type"]: r for r in _records(t.folder)}
    assert recs["dataset"]["sha256"] == h and recs["model"]["dataset_hashes"] == [h]
    assert recs["model"]["environment"]["python"] and "git_commit" in recs["model"]


def test_rotation_by_size_keeps_one_chain(make_tracker) -> None:
    t = make_tracker(provenance_rotate_bytes=6000, checkpoint_every=10)
    for i in range(40):
        t.record_turn(**turn_fields(i))
    t.close()
    segs = sorted(t.folder.glob("segment-*.jsonl"))
    assert len(segs) >= 3 and all(p.stat().st_size > 0 for p in segs)  # no empty trailing segment
    v = verify_log(t.folder, settings=t.settings)
    assert v.ok, v.report()["failures"]


def test_singleton_and_atexit_flush(fresh_home: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    code = ("from provenance import get_tracker\n"
            "from privacy.redact import redact\n"
            "t = get_tracker(redactor=redact)\n"
            "assert t is get_tracker()\n"
            "for i in range(30): t.record_event('ping', n=i)\n")  # no flush/close: atexit must do it
    env = dict(os.environ, SAHAYAK_HOME=str(fresh_home))
    subprocess.run([sys.executable, "-c", code], cwd=root, env=env, check=True, timeout=60)
    recs = _records(fresh_home / "provenance")
    assert sum(r.get("kind") == "ping" for r in recs) == 30 and recs[-1]["type"] == "checkpoint"


def test_two_processes_writing_one_log_keep_one_chain(make_tracker) -> None:
    """A training command (another process) writes while the chat's tracker is open: one valid chain."""
    import os
    import subprocess
    import sys

    t = make_tracker(checkpoint_every=4)
    other = make_tracker(checkpoint_every=4)  # a second writer in this process too
    for i in range(6):
        (t if i % 2 else other).record_event("ping", n=i)
    t.flush(timeout=30)
    other.flush(timeout=30)
    code = ("from app.core.settings import get_settings\nfrom provenance.tracker import Tracker\n"
            "x = Tracker(get_settings())\nfor i in range(5): x.record_event('from_child', n=i)\nx.close()\n")
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], cwd=root, env=dict(os.environ, PYTHONPATH=str(root)), check=True,
                   timeout=120)
    for i in range(5):
        t.record_event("after_child", n=i)
    t.flush(timeout=30)
    v = verify_log(t.folder, settings=t.settings)
    assert v.ok, [(f.kind, f.line, f.detail) for f in v.failures]
    kinds = [r.record.get("kind") for r in v.records if r.type == "event"]
    assert kinds.count("ping") == 6 and kinds.count("from_child") == 5 and kinds.count("after_child") == 5
