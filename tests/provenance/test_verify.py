"""Tamper evidence: every tamper case is detected, first at the exact line it happened."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from app.core.settings import get_settings
from provenance.keys import Signer, key_id_of
from provenance.merkle import verify_inclusion
from provenance.proofs import prove_consistency, prove_inclusion
from provenance.records import seal
from provenance.verify import verify_log
from tests.provenance.conftest import turn_fields


@pytest.fixture()
def clean_log(make_tracker, tmp_path: Path) -> tuple[Path, list[bytes], object]:
    """A flushed log of 40 turns + events with checkpoints every 10 records."""
    t = make_tracker(checkpoint_every=10)
    for i in range(40):
        t.record_turn(**turn_fields(i, session=f"s{i % 3}"))
        if i % 13 == 0:
            t.record_event("handoff", session_id=f"s{i % 3}", reason="customer asked for a person")
    t.close()
    folder = get_settings().provenance_dir
    seg = sorted(folder.glob("segment-*.jsonl"))
    assert len(seg) == 1
    return folder, seg[0].read_bytes().split(b"\n")[:-1], get_settings()


def _copy_with(folder: Path, lines: list[bytes] | None, dest: Path, raw: bytes | None = None) -> Path:
    dest.mkdir()
    shutil.copy(folder / "HEAD.json", dest / "HEAD.json")
    seg = sorted(folder.glob("segment-*.jsonl"))[0]
    (dest / seg.name).write_bytes(raw if raw is not None else b"\n".join(lines) + b"\n")
    return dest


def _first(v) -> tuple[int, str]:
    return v.failures[0].line, v.failures[0].kind


def test_clean_log_verifies(clean_log) -> None:
    folder, lines, settings = clean_log
    v = verify_log(folder, settings=settings)
    assert v.ok, v.report()["failures"]
    assert v.valid == len(lines) and v.checkpoints_verified >= 4 and v.consistency_verified


def test_changed_byte_detected_at_its_line(clean_log, tmp_path: Path) -> None:
    folder, lines, settings = clean_log
    for idx in (0, 7, 23):
        lines2 = list(lines)
        b = bytearray(lines2[idx])
        pos = b.find(b"Transfer_Money")
        if pos < 0:
            pos = b.find(b"handoff")
        b[pos] ^= 0x20  # flip the case of one letter inside the signed data
        lines2[idx] = bytes(b)
        v = verify_log(_copy_with(folder, lines2, tmp_path / f"byte{idx}"), settings=settings)
        assert not v.ok
        assert _first(v) == (idx + 1, "signature")


def test_deleted_line_detected_at_its_position(clean_log, tmp_path: Path) -> None:
    folder, lines, settings = clean_log
    lines2 = list(lines)
    del lines2[5]
    v = verify_log(_copy_with(folder, lines2, tmp_path / "del"), settings=settings)
    assert _first(v) == (6, "chain")
    assert any(f.kind == "checkpoint" for f in v.failures)


def test_swapped_lines_detected(clean_log, tmp_path: Path) -> None:
    folder, lines, settings = clean_log
    lines2 = list(lines)
    lines2[12], lines2[13] = lines2[13], lines2[12]
    v = verify_log(_copy_with(folder, lines2, tmp_path / "swap"), settings=settings)
    assert _first(v) == (13, "chain")


def test_inserted_forged_line_detected_on_its_line_only(clean_log, tmp_path: Path) -> None:
    folder, lines, settings = clean_log
    prev = json.loads(lines[8])
    forged_rec = json.loads(prev["signed_data"])["record"] | {"record_id": "f" * 32, "reply": "Approved!"}
    k = ed25519.Ed25519PrivateKey.generate()  # the forger does not have the log's key
    line, _, _ = seal(forged_rec, prev["seq"] + 1, prev["hash"], Signer(key_id_of(k.public_key()), "ed25519", k))
    lines2 = list(lines)
    lines2.insert(9, line.encode())
    v = verify_log(_copy_with(folder, lines2, tmp_path / "ins"), settings=settings)
    assert _first(v) == (10, "signature")
    assert {f.line for f in v.failures} == {10}, v.report()["failures"]


def test_forged_line_with_copied_signature_detected(clean_log, tmp_path: Path) -> None:
    folder, lines, settings = clean_log
    env = json.loads(lines[3])
    inner = json.loads(env["signed_data"])
    inner["record"]["intent"] = "Close_Account"
    env["signed_data"] = json.dumps(inner, sort_keys=True, separators=(",", ":"))
    lines2 = list(lines)
    lines2[3] = json.dumps(env).encode()
    v = verify_log(_copy_with(folder, lines2, tmp_path / "copy"), settings=settings)
    assert _first(v) == (4, "signature")


def test_torn_tail_detected(clean_log, tmp_path: Path) -> None:
    folder, lines, settings = clean_log
    raw = b"\n".join(lines) + b"\n"
    v = verify_log(_copy_with(folder, None, tmp_path / "torn", raw=raw[:-40]), settings=settings)
    assert not v.ok
    assert (v.failures[0].line, v.failures[0].kind) == (len(lines), "torn_tail")


def test_truncated_whole_lines_detected_through_signed_head(clean_log, tmp_path: Path) -> None:
    folder, lines, settings = clean_log
    v = verify_log(_copy_with(folder, lines[:-4], tmp_path / "cut"), settings=settings)
    assert not v.ok
    assert _first(v) == (len(lines) - 3, "truncated")


def test_schema_mismatch_reported(clean_log, tmp_path: Path) -> None:
    folder, lines, settings = clean_log
    lines2 = list(lines)
    env = json.loads(lines2[2])
    env["schema_version"] = "9.9"
    lines2[2] = json.dumps(env).encode()
    v = verify_log(_copy_with(folder, lines2, tmp_path / "schema"), settings=settings)
    assert _first(v) == (3, "schema")


def test_cli_verify_json_exit_codes(clean_log, tmp_path: Path) -> None:
    folder, lines, settings = clean_log
    root = Path(__file__).resolve().parents[2]
    ok = subprocess.run([sys.executable, "-m", "app.cli", "provenance", "verify", str(folder), "--json"],
                        cwd=root, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["ok"] is True
    lines2 = list(lines)
    del lines2[20]
    bad = _copy_with(folder, lines2, tmp_path / "cli")
    res = subprocess.run([sys.executable, "-m", "app.cli", "provenance", "verify", str(bad), "--json"],
                         cwd=root, capture_output=True, text=True)
    assert res.returncode == 1
    rep = json.loads(res.stdout)
    assert rep["ok"] is False and rep["failures"][0]["line"] == 21 and rep["failures"][0]["kind"] == "chain"


def test_inclusion_and_consistency_proofs_from_log(clean_log) -> None:
    folder, lines, settings = clean_log
    rid = json.loads(lines[17])["record_id"]
    p = prove_inclusion(folder, rid, settings=settings)
    assert p["verified"] and p["line"] == 18
    # Tampered leaf: the same proof must not verify a different record.
    other = bytes.fromhex(prove_inclusion(folder, json.loads(lines[18])["record_id"], settings=settings)["leaf_hash"])
    assert not verify_inclusion(p["seq"], p["tree_size"], other, [bytes.fromhex(h) for h in p["proof"]],
                                bytes.fromhex(p["root_hash"]))
    by_turn = prove_inclusion(folder, "turn-3", settings=settings)
    assert by_turn["verified"] and by_turn["type"] == "turn"
    c = prove_consistency(folder, 10, None, settings=settings)
    assert c["verified"] and c["new_size"] > 10


def test_ill_typed_fields_are_reported_not_raised(clean_log, tmp_path: Path) -> None:
    """A signature that is not a string, an unhashable key id, signed_data that cannot be
    UTF-8 encoded (a lone surrogate from a \\u escape): each is a failure on its own line."""
    folder, lines, settings = clean_log
    lines2 = list(lines)
    env = json.loads(lines2[3])
    env["signature"] = 12345
    lines2[3] = json.dumps(env).encode()
    env = json.loads(lines2[6])
    inner = json.loads(env["signed_data"])
    inner["key_id"] = ["not", "hashable"]
    env["signed_data"] = json.dumps(inner, sort_keys=True, separators=(",", ":"))
    lines2[6] = json.dumps(env).encode()
    env = json.loads(lines2[9])
    env["signed_data"] = env["signed_data"][:-1] + ',"z":"\ud800"}'
    lines2[9] = json.dumps(env).encode()  # ensure_ascii: the surrogate travels as \ud800
    v = verify_log(_copy_with(folder, lines2, tmp_path / "odd"), settings=settings)
    firsts = {}
    for f in v.failures:
        firsts.setdefault(f.line, f.kind)
    assert firsts[4] == "signature" and firsts[7] == "signature" and firsts[10] == "schema"
    assert min(firsts) == 4
