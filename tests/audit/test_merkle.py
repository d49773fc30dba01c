"""RFC 6962 hashing against the published Certificate Transparency test vectors, and proofs."""

from __future__ import annotations

import hashlib

import pytest

from audit import merkle

# The leaf inputs and tree heads used by Certificate Transparency's reference implementation
# (merkle_tree_test.cc in google/certificate-transparency; also in RFC 9162's reference code).
CT_LEAVES = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
LEAVES = [merkle.leaf_hash(bytes.fromhex(x)) for x in CT_LEAVES]


def _reference_root(leaves: list[bytes]) -> bytes:
    """MTH straight from RFC 6962 section 2.1, recursively, as an independent check."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return merkle.node_hash(_reference_root(leaves[:k]), _reference_root(leaves[k:]))


def test_empty_tree_root() -> None:
    assert merkle.root_of([]).hex() == hashlib.sha256(b"").hexdigest()


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_the_ct_vectors(size: int) -> None:
    assert merkle.root_of(LEAVES[:size]).hex() == CT_ROOTS[size - 1]


def test_streaming_root_matches_the_recursive_definition_up_to_130_leaves() -> None:
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(130)]
    for size in range(131):
        assert merkle.root_of(leaves[:size]) == _reference_root(leaves[:size])


def test_every_inclusion_proof_verifies_and_tampering_fails() -> None:
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(40)]
    for size in range(1, 41):
        root = _reference_root(leaves[:size])
        range_root = merkle.list_range_root(leaves)
        for index in range(size):
            proof = merkle.inclusion_proof(index, size, range_root)
            assert merkle.verify_inclusion(index, size, leaves[index], proof, root)
            assert not merkle.verify_inclusion(
                index, size, leaves[index], [*proof, b"\0" * 32], root
            )
            if proof:
                assert not merkle.verify_inclusion(index, size, leaves[index], proof[:-1], root)
                flipped = [bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:]]
                assert not merkle.verify_inclusion(index, size, leaves[index], flipped, root)
            other = (index + 1) % size
            if other != index:
                assert not merkle.verify_inclusion(other, size, leaves[index], proof, root)


def test_every_consistency_proof_verifies_and_tampering_fails() -> None:
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(33)]
    range_root = merkle.list_range_root(leaves)
    for new in range(1, 34):
        new_root = _reference_root(leaves[:new])
        for old in range(1, new + 1):
            old_root = _reference_root(leaves[:old])
            proof = merkle.consistency_proof(old, new, range_root)
            assert merkle.verify_consistency(old, new, old_root, new_root, proof)
            if proof:
                assert not merkle.verify_consistency(old, new, old_root, new_root, proof[:-1])
                assert not merkle.verify_consistency(
                    old, new, old_root, new_root, [*proof, b"\0" * 32]
                )
            if old < new:
                assert not merkle.verify_consistency(old, new, new_root, new_root, proof)


@pytest.mark.parametrize(
    ("index", "size", "proof"),
    [
        (0, 0, []),  # empty tree
        (5, 4, []),  # index out of range
        (-1, 4, []),
        (0, 4, [b"short"]),  # wrong hash size
    ],
)
def test_malformed_inclusion_proofs_are_rejected(index: int, size: int, proof: list[bytes]) -> None:
    assert not merkle.verify_inclusion(index, size, LEAVES[0], proof, bytes(32))


def test_malformed_consistency_inputs_are_rejected() -> None:
    root4 = merkle.root_of(LEAVES[:4])
    root8 = merkle.root_of(LEAVES[:8])
    assert not merkle.verify_consistency(8, 4, root8, root4, [])  # shrinking tree
    assert not merkle.verify_consistency(4, 8, root4, root8, [])  # missing proof
    assert not merkle.verify_consistency(4, 8, root4, root8, [b"x" * 31])  # wrong size
    assert merkle.verify_consistency(8, 8, root8, root8, [])
    assert not merkle.verify_consistency(8, 8, root8, root8, [root8])  # extra hash
    with pytest.raises(ValueError):
        merkle.inclusion_proof(4, 4, merkle.list_range_root(LEAVES))
    with pytest.raises(ValueError):
        merkle.consistency_proof(0, 4, merkle.list_range_root(LEAVES))
