"""RFC 6962 / RFC 9162 Merkle tree hashing, inclusion and consistency proofs.

Pure functions over bytes, no Django: the offline bundle verifier (``audit/verify_bundle.py``)
carries its own copy of the verification half so that it depends on nothing but ``cryptography``.

- leaf hash  = SHA-256(0x00 || leaf input)
- node hash  = SHA-256(0x01 || left || right)
- MTH({})    = SHA-256("")
- MTH(D[n])  = node(MTH(D[0:k]), MTH(D[k:n])) with k the largest power of two < n.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(leaf_input: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf_input).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class StreamingRoot:
    """Computes MTH over leaf hashes fed one at a time, in O(log n) memory.

    Keeps the perfect subtrees seen so far (a Merkle "mountain range"); RFC 6962's tree over n
    leaves is those subtrees folded from the right.
    """

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []
        self.size = 0

    def add(self, leaf: bytes) -> None:
        size, digest = 1, leaf
        while self._stack and self._stack[-1][0] == size:
            _, left = self._stack.pop()
            digest = node_hash(left, digest)
            size *= 2
        self._stack.append((size, digest))
        self.size += 1

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        digest = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            digest = node_hash(left, digest)
        return digest


def root_of(leaves: Iterable[bytes]) -> bytes:
    tree = StreamingRoot()
    for leaf in leaves:
        tree.add(leaf)
    return tree.root()


RangeRoot = Callable[[int, int], bytes]


def list_range_root(leaves: Sequence[bytes]) -> RangeRoot:
    """A ``range_root(start, end)`` over an in-memory list of leaf hashes."""
    return lambda start, end: root_of(leaves[start:end])


def inclusion_proof(index: int, size: int, range_root: RangeRoot) -> list[bytes]:
    """RFC 6962 PATH(m, D[n]) for leaf ``index`` in a tree of ``size`` leaves.

    ``range_root(start, end)`` returns MTH of leaves[start:end]; the proof needs one such root
    per level, so the caller decides how leaves are read (memory, database, cache).
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size} leaves")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            path.append(range_root(start + k, end))
            end = start + k
        else:
            path.append(range_root(start, start + k))
            start += k
    path.reverse()
    return path


def consistency_proof(old_size: int, new_size: int, range_root: RangeRoot) -> list[bytes]:
    """RFC 6962 PROOF(m, D[n]) that the tree of ``old_size`` leaves is a prefix of ``new_size``."""
    if not 0 < old_size <= new_size:
        raise ValueError(f"no consistency proof from {old_size} to {new_size} leaves")
    if old_size == new_size:
        return []

    def subproof(m: int, start: int, end: int, complete: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if complete else [range_root(start, end)]
        k = _split(n)
        if m <= k:
            return subproof(m, start, start + k, complete) + [range_root(start + k, end)]
        return subproof(m - k, start + k, end, False) + [range_root(start, start + k)]

    return subproof(old_size, 0, new_size, True)


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 section 2.1.3.2: does ``proof`` put ``leaf`` at ``index`` under ``root``?"""
    if not 0 <= index < size:
        return False
    fn, sn = index, size - 1
    digest = leaf
    for sibling in proof:
        if len(sibling) != 32 or sn == 0:
            return False
        if fn & 1 or fn == sn:
            digest = node_hash(sibling, digest)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            digest = node_hash(digest, sibling)
        fn >>= 1
        sn >>= 1
    return sn == 0 and digest == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 section 2.1.4.2: is the ``old_size`` tree a prefix of the ``new_size`` tree?"""
    if old_size < 0 or new_size < old_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof
    if any(len(p) != 32 for p in proof):
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is the first node
        path.insert(0, old_root)
    if not path:
        return False
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root
