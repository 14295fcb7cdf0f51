"""Parallel verification (signatures checked by worker processes) gives exactly the
sequential verifier's result — same failures, same lines, same JSON report — on a clean
log and on every tamper case, and it really uses the workers' answers."""

from __future__ import annotations

import base64
import json
import multiprocessing
import os
import random
import shutil
import subprocess
import sys
import threading
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import provenance.verify as pv
from app.core.settings import Settings, get_settings
from privacy.redact import redact
from provenance.keys import Signer, key_id_of, keyring_for, public_pem
from provenance.records import base_record, seal
from provenance.tracker import Tracker
from provenance.verify import Verification, trusted_keys, verify_log
from tests.provenance.conftest import turn_fields

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory):
    """A log with several segments, handoffs, a key rotation and an acknowledged torn tail."""
    home = tmp_path_factory.mktemp("parallel-home")
    s = Settings(home=home, checkpoint_every=7, provenance_rotate_bytes=40_000)
    t = Tracker(s, redactor=redact)
    for i in range(45):
        t.record_turn(**turn_fields(i, session=f"s{i % 4}"))
        if i % 11 == 0:
            t.record_event("handoff", session_id=f"s{i % 4}", staff="meera", reason="asked for a person")
        if i == 20:
            t.rotate_key()
    t.close()
    last = sorted(s.provenance_dir.glob("segment-*.jsonl"))[-1]
    with open(last, "ab") as fh:
        fh.write(b'{"alg":"ed25519","hash":"to')  # a crash mid-line, acknowledged by the next segment
    t = Tracker(s, redactor=redact)
    for i in range(45, 60):
        t.record_turn(**turn_fields(i, session=f"s{i % 4}"))
    t.close()
    assert len(sorted(s.provenance_dir.glob("segment-*.jsonl"))) >= 3
    return s


@pytest.fixture(scope="module")
def pool():
    """One worker pool for the module (a pool per verification would cost start-ups only)."""
    method = "fork" if threading.active_count() == 1 else "forkserver"
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context(method)) as ex:
        yield ex


def _snapshot(v: Verification) -> dict[str, Any]:
    """Everything a verification yields: the JSON report and what proofs are built from."""
    return {"report": json.loads(json.dumps(v.report(), default=str)),
            "records": [asdict(r) for r in v.records], "leaves": v.leaves,
            "checkpoints": v.checkpoints, "first_seq": v.first_seq}


def _both(folder: Path, keys: dict[str, Any], pool: ProcessPoolExecutor) -> tuple[dict, dict]:
    seq = verify_log(folder, keys=keys, workers=1)
    par = verify_log(folder, keys=keys, workers=2, pool=pool)
    return _snapshot(seq), _snapshot(par)


def _segments(folder: Path) -> list[Path]:
    return sorted(folder.glob("segment-*.jsonl"))


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")[:-1]


def _put(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"\n".join(lines) + b"\n")


def _foreign_signer() -> Any:
    """A signer with a key the log never trusted."""
    k = ed25519.Ed25519PrivateKey.generate()
    return Signer(key_id_of(k.public_key()), "ed25519", k)


def _forged_seal(prev_line: bytes, record: dict, signer: Any = None) -> tuple[bytes, str]:
    """A well-formed envelope continuing ``prev_line``, signed with a foreign key; returns (line, hash)."""
    prev = json.loads(prev_line)
    line, h, _ = seal(record, prev["seq"] + 1, prev["hash"], signer or _foreign_signer())
    return line.encode(), h


def _record_of(line: bytes) -> dict:
    return json.loads(json.loads(line)["signed_data"])["record"]


def _byte(seg: Path) -> None:
    lines = _lines(seg)
    for idx in (0, 5, len(lines) // 2):
        b = bytearray(lines[idx])
        pos = b.find(b"Transfer_Money")
        b[pos if pos >= 0 else b.find(b'"record_id') + 3] ^= 0x20
        lines[idx] = bytes(b)
    _put(seg, lines)


def _delete(seg: Path) -> None:
    lines = _lines(seg)
    del lines[6]
    _put(seg, lines)


def _swap(seg: Path) -> None:
    lines = _lines(seg)
    lines[3], lines[4] = lines[4], lines[3]
    _put(seg, lines)


def _insert_forged(seg: Path) -> None:
    lines = _lines(seg)
    line, _ = _forged_seal(lines[8], _record_of(lines[8]) | {"record_id": "f" * 32, "reply": "Approved!"})
    lines.insert(9, line)
    _put(seg, lines)


def _copied_signature(seg: Path) -> None:
    lines = _lines(seg)
    env = json.loads(lines[2])
    inner = json.loads(env["signed_data"])
    inner["record"]["intent"] = "Close_Account"
    env["signed_data"] = json.dumps(inner, sort_keys=True, separators=(",", ":"))
    lines[2] = json.dumps(env).encode()
    _put(seg, lines)


def _torn_tail(seg: Path) -> None:
    seg.write_bytes(seg.read_bytes()[:-40])


def _truncated(seg: Path) -> None:
    _put(seg, _lines(seg)[:-3])


def _schema(seg: Path) -> None:
    lines = _lines(seg)
    env = json.loads(lines[1])
    env["schema_version"] = "9.9"
    lines[1] = json.dumps(env).encode()
    env = json.loads(lines[4])
    del env["alg"]
    lines[4] = json.dumps(env).encode()
    _put(seg, lines)


def _odd_lines(seg: Path) -> None:
    """Lines that are JSON but not envelopes, or envelopes with ill-typed fields."""
    lines = _lines(seg)
    sig = json.loads(lines[3])
    sig["signature"] = 12345
    kid = json.loads(lines[6])
    inner = json.loads(kid["signed_data"])
    inner["key_id"] = ["not", "a", "key id"]
    kid["signed_data"] = json.dumps(inner, sort_keys=True, separators=(",", ":"))
    b64 = json.loads(lines[7])
    b64["signature"] = "not base64!"
    sur = json.loads(lines[8])
    sur["signed_data"] = sur["signed_data"][:-1] + ',"z":"\ud800"}'  # cannot be UTF-8 encoded
    lines[3], lines[6], lines[7], lines[8] = (json.dumps(sig).encode(), json.dumps(kid).encode(),
                                              json.dumps(b64).encode(), json.dumps(sur).encode())
    lines.insert(9, b"[1, 2, 3]")
    lines.insert(10, b"not json at all")
    _put(seg, lines)


def _forged_rotation(seg: Path) -> None:
    """A key_rotation event signed by an untrusted key that re-announces the log's own key id
    with the forger's public key, then records the forger signed under that key id. Workers
    check those with the announced key (they say "valid"); the verifier must not believe it."""
    lines = _lines(seg)
    forger = _foreign_signer()
    trusted_kid = json.loads(lines[5])["key_id"]
    rot = base_record("event") | {"kind": "key_rotation", "new_key_id": trusted_kid,
                                  "new_public_pem": public_pem(forger.public_key)}
    rot_line, _ = _forged_seal(lines[4], rot, forger)
    posing = Signer(trusted_kid, "ed25519", forger.private_key)
    follow, h = _forged_seal(rot_line, _record_of(lines[5]) | {"record_id": "e" * 32}, posing)
    follow2, _ = _forged_seal(follow, _record_of(lines[6]) | {"record_id": "d" * 32}, posing)
    lines[5:5] = [rot_line, follow, follow2]
    _put(seg, lines)


def _delete_middle_segment(folder: Path) -> None:
    _segments(folder)[1].unlink()


def _swap_segment_lines(folder: Path) -> None:
    a, b = _segments(folder)[:2]
    la, lb = _lines(a), _lines(b)
    la[-1], lb[0] = lb[0], la[-1]
    _put(a, la)
    _put(b, lb)


SEGMENT_CASES: dict[str, Callable[[Path], None]] = {
    "byte": _byte, "delete": _delete, "swap": _swap, "insert_forged": _insert_forged,
    "copied_signature": _copied_signature, "torn_tail": _torn_tail, "truncated": _truncated,
    "schema": _schema, "odd_lines": _odd_lines, "forged_rotation": _forged_rotation,
}


def _copy(history, dest: Path) -> Path:
    shutil.copytree(history.provenance_dir, dest)
    return dest


def test_clean_log_same_result_and_actually_parallel(history, pool, tmp_path: Path) -> None:
    keys = trusted_keys(history)
    seq, par = _both(history.provenance_dir, keys, pool)
    assert seq == par
    assert seq["report"]["ok"] and seq["report"]["warnings"][0]["kind"] == "torn_tail"
    assert len(seq["report"]["keys_used"]) == 2  # the rotation was followed in both
    # Only the original key trusted: the successor is learned from the signed rotation in both modes.
    first = min(keyring_for(history).describe(), key=lambda k: k["created_at"])["key_id"]
    seq, par = _both(history.provenance_dir, {first: keys[first]}, pool)
    assert seq == par and seq["report"]["ok"]


@pytest.mark.parametrize("case", sorted(SEGMENT_CASES))
@pytest.mark.parametrize("which", ["first", "last"])
def test_tamper_case_same_report(history, pool, tmp_path: Path, case: str, which: str) -> None:
    folder = _copy(history, tmp_path / "log")
    segs = _segments(folder)
    SEGMENT_CASES[case](segs[0] if which == "first" else segs[-1])
    keys = trusted_keys(history)
    seq, par = _both(folder, keys, pool)
    assert not seq["report"]["ok"], case
    assert seq == par, case
    # A single segment alone, too (the chain then starts mid-log).
    seq, par = _both(segs[0] if which == "first" else segs[-1], keys, pool)
    assert seq == par, case


@pytest.mark.parametrize("damage", [_delete_middle_segment, _swap_segment_lines])
def test_cross_segment_damage_same_report(history, pool, tmp_path: Path, damage) -> None:
    folder = _copy(history, tmp_path / "log")
    damage(folder)
    seq, par = _both(folder, trusted_keys(history), pool)
    assert not seq["report"]["ok"]
    assert seq == par


def test_random_damage_same_report(history, pool, tmp_path: Path) -> None:
    rng = random.Random(5)
    keys = trusted_keys(history)
    for case in range(25):
        folder = _copy(history, tmp_path / f"rand{case}")
        seg = rng.choice(_segments(folder))
        data = bytearray(seg.read_bytes())
        pos = rng.randrange(len(data))
        kind = case % 3
        if kind == 0:
            data[pos] ^= rng.randrange(1, 256)
        elif kind == 1:
            del data[pos:pos + rng.randrange(1, 60)]
        else:
            data[pos:pos] = rng.randbytes(rng.randrange(1, 30))
        seg.write_bytes(bytes(data))
        seq, par = _both(folder, keys, pool)
        assert seq == par, (case, kind, seg.name, pos)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["flip", "delete", "insert"]), where=st.floats(0, 1), seg_pick=st.floats(0, 1),
       arg=st.integers(1, 255))
def test_any_damage_same_report_property(history, pool, tmp_path_factory, kind: str, where: float,
                                         seg_pick: float, arg: int) -> None:
    folder = _copy(history, tmp_path_factory.mktemp("prop") / "log")
    segs = _segments(folder)
    seg = segs[min(int(seg_pick * len(segs)), len(segs) - 1)]
    data = bytearray(seg.read_bytes())
    pos = min(int(where * len(data)), len(data) - 1)
    if kind == "flip":
        data[pos] ^= arg
    elif kind == "delete":
        del data[pos:pos + arg]
    else:
        data[pos:pos] = bytes([arg]) * (arg % 7 + 1)
    seg.write_bytes(bytes(data))
    seq, par = _both(folder, trusted_keys(history), pool)
    assert not seq["report"]["ok"]
    assert seq == par


def _lying_worker(keys_der: list[bytes], tasks: list) -> bytes:
    """Stands in for the worker function: claims every signature is invalid."""
    return bytes(len(tasks))


def _dying_worker(keys_der: list[bytes], tasks: list) -> bytes:
    """Stands in for the worker function: the worker process dies."""
    os._exit(3)


def test_workers_answers_are_used(history, pool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pv, "_check_signatures", _lying_worker)
    v = verify_log(history.provenance_dir, keys=trusted_keys(history), workers=2, pool=pool)
    assert not v.ok and {f.kind for f in v.failures} >= {"signature"}
    assert verify_log(history.provenance_dir, keys=trusted_keys(history), workers=1).ok


def test_a_dead_worker_falls_back_to_checking_here(history, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = trusted_keys(history)
    expected = _snapshot(verify_log(history.provenance_dir, keys=keys, workers=1))
    monkeypatch.setattr(pv, "_check_signatures", _dying_worker)
    monkeypatch.setattr(pv, "CHUNK_LINES", 10)  # several chunks: some submitted after the pool broke
    got = _snapshot(verify_log(history.provenance_dir, keys=keys, workers=2, parallel_min_bytes=0))
    assert got == expected


def test_small_logs_stay_in_process(history, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_pool(*a: Any, **k: Any) -> None:
        raise AssertionError("a pool was started for a small log")

    monkeypatch.setattr(pv, "ProcessPoolExecutor", no_pool)
    assert verify_log(history.provenance_dir, keys=trusted_keys(history), workers=4).ok
    with pytest.raises(AssertionError, match="pool was started"):
        verify_log(history.provenance_dir, keys=trusted_keys(history), workers=4, parallel_min_bytes=0)


def test_cli_workers_option_gives_the_same_json(make_tracker, tmp_path: Path) -> None:
    """Through `sahayak provenance verify --workers`: a log over the in-process threshold."""
    t = make_tracker(checkpoint_every=50)
    for i in range(800):  # ~1.2 MiB, above the 1 MiB threshold for a forked pool
        t.record_turn(**turn_fields(i, session=f"s{i % 9}"))
    t.close()
    folder = get_settings().provenance_dir
    seg = _segments(folder)[0]
    lines = _lines(seg)
    lines[500], lines[501] = lines[501], lines[500]
    env = json.loads(lines[700])
    env["signature"] = base64.b64encode(bytes(64)).decode()
    lines[700] = json.dumps(env).encode()
    _put(seg, lines)
    outs = []
    for workers in ("1", "2"):
        res = subprocess.run([sys.executable, "-m", "app.cli", "provenance", "verify", str(folder), "--json",
                              "--workers", workers], cwd=ROOT, capture_output=True, text=True,
                             env=dict(os.environ, SAHAYAK_HOME=str(get_settings().home)))
        assert res.returncode == 1, res.stderr
        outs.append(json.loads(res.stdout))
    assert outs[0] == outs[1]
    found = [(f["line"], f["kind"]) for f in outs[0]["failures"]]
    assert found[0] == (501, "chain") and (701, "signature") in found
