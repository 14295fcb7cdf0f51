"""RFC 6962 Merkle proofs: property tests over random tree sizes, and tampering."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from provenance.merkle import (
    Frontier,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_from_leaves,
    verify_consistency,
    verify_inclusion,
)


def _leaves(n: int, salt: int = 0) -> list[bytes]:
    return [leaf_hash(f"{salt}:{i}".encode()) for i in range(n)]


def test_known_rfc6962_structure() -> None:
    # Three leaves: root = H(1 || H(1 || l0 || l1) || l2), the RFC's unbalanced split.
    l0, l1, l2 = _leaves(3)
    expected = hashlib.sha256(b"\x01" + hashlib.sha256(b"\x01" + l0 + l1).digest() + l2).digest()
    assert root_from_leaves([l0, l1, l2]) == expected
    assert root_from_leaves([]) == hashlib.sha256(b"").digest()


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 300), data=st.data())
def test_inclusion_proofs_verify_and_tampering_fails(n: int, data: st.DataObject) -> None:
    leaves = _leaves(n)
    root = root_from_leaves(leaves)
    i = data.draw(st.integers(0, n - 1))
    proof = inclusion_proof(i, leaves)
    assert verify_inclusion(i, n, leaves[i], proof, root)
    # A different leaf, a wrong index or a changed proof node must all fail.
    assert not verify_inclusion(i, n, leaf_hash(b"forged"), proof, root)
    if n > 1:
        j = data.draw(st.integers(0, n - 1).filter(lambda j: j != i))
        assert not verify_inclusion(j, n, leaves[i], proof, root)
        k = data.draw(st.integers(0, len(proof) - 1))
        bad = list(proof)
        bad[k] = bytes([bad[k][0] ^ 1]) + bad[k][1:]
        assert not verify_inclusion(i, n, leaves[i], bad, root)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 300), data=st.data())
def test_consistency_proofs_verify_and_rewritten_history_fails(n: int, data: st.DataObject) -> None:
    leaves = _leaves(n)
    m = data.draw(st.integers(1, n))
    proof = consistency_proof(m, leaves)
    old_root, new_root = root_from_leaves(leaves[:m]), root_from_leaves(leaves)
    assert verify_consistency(m, n, old_root, new_root, proof)
    if m < n:
        # History rewritten: one old leaf changed after the old checkpoint was signed.
        j = data.draw(st.integers(0, m - 1))
        changed = list(leaves)
        changed[j] = leaf_hash(b"rewritten")
        assert not verify_consistency(m, n, old_root, root_from_leaves(changed), consistency_proof(m, changed))


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 400))
def test_frontier_matches_full_recomputation(n: int) -> None:
    leaves = _leaves(n, salt=7)
    f = Frontier()
    for leaf in leaves:
        f.append(leaf)
    assert f.root() == root_from_leaves(leaves)
    assert Frontier.from_json(f.to_json()).root() == f.root()
