"""Reads over the ledger: leaf hashes in order, tree roots, proofs, checkpoint messages."""

from __future__ import annotations

import json
from collections.abc import Iterator

from audit import merkle
from audit.canonical import format_time
from audit.models import AuditEvent, Checkpoint

CHECKPOINT_FORMAT = "gatehouse-checkpoint-v1"
_CHUNK = 5000


def tree_size() -> int:
    """How many events are committed (the sequence numbers are gapless from 1)."""
    head = AuditEvent.objects.order_by("-sequence").values_list("sequence", flat=True).first()
    return int(head or 0)


def leaf_hashes(start: int = 0, end: int | None = None) -> Iterator[bytes]:
    """Leaf hashes of leaves[start:end] (0-based, so leaf i is the event with sequence i+1)."""
    qs = AuditEvent.objects.filter(sequence__gt=start)
    if end is not None:
        qs = qs.filter(sequence__lte=end)
    for value in qs.order_by("sequence").values_list("leaf_hash", flat=True).iterator(_CHUNK):
        yield bytes.fromhex(value)


def range_root(start: int, end: int) -> bytes:
    """MTH over leaves[start:end], streamed from the database."""
    return merkle.root_of(leaf_hashes(start, end))


def root_at(size: int) -> bytes:
    return range_root(0, size)


def inclusion_proof(sequence: int, size: int) -> list[bytes]:
    """Audit path of the event ``sequence`` in the tree of the first ``size`` events."""
    return merkle.inclusion_proof(sequence - 1, size, range_root)


def consistency_proof(old_size: int, new_size: int) -> list[bytes]:
    return merkle.consistency_proof(old_size, new_size, range_root)


def checkpoint_message(checkpoint: Checkpoint) -> bytes:
    """The exact bytes a checkpoint's signature covers (canonical JSON, UTF-8)."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "tree_size": checkpoint.tree_size,
        "root_hash": checkpoint.root_hash,
        "signed_at": format_time(checkpoint.signed_at),
        "key_id": checkpoint.key_id,
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def covering_checkpoint(sequence: int) -> Checkpoint | None:
    """The newest checkpoint that includes the event ``sequence``."""
    return Checkpoint.objects.filter(tree_size__gte=sequence).order_by("-tree_size").first()
