"""Merkle proofs over a verified log: one record's inclusion, and consistency between checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.core.errors import SahayakError
from provenance.merkle import (
    consistency_proof,
    inclusion_proof,
    verify_consistency,
    verify_inclusion,
)
from provenance.verify import verify_log


def prove_inclusion(folder: str | Path, record_id: str, settings: Any = None,
                    keys: dict[str, Any] | None = None) -> dict[str, Any]:
    """Inclusion proof of one record in the latest checkpoint that covers it, verified."""
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
