"""RFC 6962 / RFC 9162 Merkle tree hashing, inclusion and consistency proofs.

Leaves are the envelopes' ``signed_data`` bytes. ``leaf_hash = SHA-256(0x00 || data)``
and ``node_hash = SHA-256(0x01 || left || right)``; the tree of ``n`` leaves splits at
the largest power of two below ``n``. Verification follows RFC 9162 §2.1.3.2 / §2.1.4.2.
"""

from __future__ import annotations

import hashlib
from typing import Sequence


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


EMPTY_ROOT = hashlib.sha256(b"").digest()


def _split(n: int) -> int:
    """Largest power of two strictly smaller than ``n`` (n >= 2)."""
    k = 1
    while k << 1 < n:
        k <<= 1
    return k


def root_from_leaves(leaves: Sequence[bytes]) -> bytes:
    """Merkle tree hash (MTH) of already-hashed leaves."""
    n = len(leaves)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaves[0]
    k = _split(n)
    return node_hash(root_from_leaves(leaves[:k]), root_from_leaves(leaves[k:]))


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """Audit path for leaf ``index`` in the tree of ``leaves`` (RFC 6962 PATH)."""
    n = len(leaves)
    if not 0 <= index < n:
        raise ValueError(f"leaf {index} outside a tree of {n}")
    if n == 1:
        return []
    k = _split(n)
    if index < k:
        return inclusion_proof(index, leaves[:k]) + [root_from_leaves(leaves[k:])]
    return inclusion_proof(index - k, leaves[k:]) + [root_from_leaves(leaves[:k])]


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """Check an inclusion proof (RFC 9162 §2.1.3.2)."""
    if not 0 <= index < size:
        return False
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def consistency_proof(old_size: int, leaves: Sequence[bytes]) -> list[bytes]:
    """Proof that the first ``old_size`` leaves are a prefix of ``leaves`` (RFC 6962 PROOF)."""
    n = len(leaves)
    if not 0 < old_size <= n:
        raise ValueError(f"consistency needs 0 < old size ({old_size}) <= new size ({n})")
    return _subproof(old_size, leaves, True)


def _subproof(m: int, leaves: Sequence[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [root_from_leaves(leaves)]
    k = _split(n)
    if m <= k:
        return _subproof(m, leaves[:k], complete) + [root_from_leaves(leaves[k:])]
    return _subproof(m - k, leaves[k:], False) + [root_from_leaves(leaves[:k])]


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """Check a consistency proof between two tree heads (RFC 9162 §2.1.4.2)."""
    if old_size <= 0 or old_size > new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    proof = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is the first node
        proof = [old_root] + proof
    if not proof:
        return False
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


class Frontier:
    """Incremental Merkle root: the hashes of the perfect subtrees along the right edge.

    Appending is O(log n) and the root is O(log n), so the writer can checkpoint a log
    of millions of records without keeping or rehashing them all.
    """

    def __init__(self, size: int = 0, nodes: Sequence[bytes] = ()) -> None:
        self.size = size
        self.nodes: list[bytes] = list(nodes)  # one per set bit of size, biggest subtree first

    def append(self, leaf: bytes) -> None:
        node = leaf
        size = self.size
        # Merge equal-size subtrees, like carrying in a binary counter.
        while size & 1:
            node = node_hash(self.nodes.pop(), node)
            size >>= 1
        self.nodes.append(node)
        self.size += 1

    def root(self) -> bytes:
        if not self.nodes:
            return EMPTY_ROOT
        r = self.nodes[-1]
        for left in reversed(self.nodes[:-1]):
            r = node_hash(left, r)
        return r

    def to_json(self) -> dict:
        return {"size": self.size, "nodes": [n.hex() for n in self.nodes]}

    @classmethod
    def from_json(cls, data: dict) -> "Frontier":
        return cls(int(data["size"]), [bytes.fromhex(h) for h in data["nodes"]])
