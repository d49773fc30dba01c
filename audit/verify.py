"""Verification of the whole ledger: every leaf, the chain, every checkpoint and its signature.

Streams events in sequence order in chunks, so memory stays flat however long the ledger is.
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from audit import ledger, merkle, signing
from audit.canonical import GENESIS, PAYLOAD_FIELDS, canonical_bytes, event_payload
from audit.checkpoints import read_anchor_file
from audit.models import AuditEvent, Checkpoint, SigningKey

_CHUNK = 2000
# Rows as light tuples with attribute access: building model instances would cost more than
# the hashing itself.
_Row = namedtuple("_Row", (*PAYLOAD_FIELDS, "leaf_hash"))  # type: ignore[misc]  # noqa: PYI024


@dataclass
class VerifyResult:
    """``ok`` with counts, or the first problem found: a sequence number and why."""

    events: int = 0
    checkpoints: int = 0
    problems: list[str] = field(default_factory=list)
    first_bad_sequence: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def fail(self, message: str, sequence: int | None = None) -> None:
        if self.first_bad_sequence is None and sequence is not None:
            self.first_bad_sequence = sequence
        self.problems.append(message)


def _check_checkpoint(
    result: VerifyResult, checkpoint: Checkpoint, root: bytes, keys: dict[str, str]
) -> None:
    label = f"checkpoint #{checkpoint.pk} (tree size {checkpoint.tree_size})"
    if root.hex() != checkpoint.root_hash:
        result.fail(
            f"{label}: the events do not hash to its signed root; an event at or before "
            f"sequence {checkpoint.tree_size} was changed",
            checkpoint.tree_size,
        )
    public = keys.get(checkpoint.key_id)
    if public is None:
        result.fail(f"{label}: signed by unknown key {checkpoint.key_id}")
    elif not signing.verify_signature(
        public, checkpoint.signature, ledger.checkpoint_message(checkpoint)
    ):
        result.fail(f"{label}: the signature does not verify with key {checkpoint.key_id}")


def ledger_verify() -> VerifyResult:
    """Recompute every leaf hash and chain link, and every checkpoint root and signature."""
    result = VerifyResult()
    keys = dict(SigningKey.objects.values_list("key_id", "public_key"))
    checkpoints = list(Checkpoint.objects.order_by("tree_size", "id"))
    pending = iter(checkpoints)
    next_cp = next(pending, None)
    tree = merkle.StreamingRoot()
    expected_seq, prev = 1, GENESIS
    previous_time = None

    with transaction.atomic():  # one consistent snapshot on PostgreSQL
        rows = AuditEvent.objects.order_by("sequence").values_list(*_Row._fields)
        event: Any
        for event in map(_Row._make, rows.iterator(_CHUNK)):
            if event.sequence != expected_seq:
                if event.sequence > expected_seq:
                    result.fail(
                        f"sequence {expected_seq}: missing (the next event is "
                        f"{event.sequence}); events were deleted",
                        expected_seq,
                    )
                else:
                    result.fail(f"sequence {event.sequence}: out of order", event.sequence)
                expected_seq = event.sequence
            if event.prev_hash != prev:
                result.fail(
                    f"sequence {event.sequence}: does not link to the event before it "
                    "(an event was inserted, removed or reordered)",
                    event.sequence,
                )
            if previous_time is not None and event.occurred_at < previous_time:
                result.fail(
                    f"sequence {event.sequence}: its time is earlier than the event before it",
                    event.sequence,
                )
            previous_time = event.occurred_at
            computed = merkle.leaf_hash(canonical_bytes(event_payload(event)))
            if computed.hex() != event.leaf_hash:
                result.fail(
                    f"sequence {event.sequence}: its content does not match its hash "
                    "(the event was edited)",
                    event.sequence,
                )
            # The tree is built from recomputed hashes: a forged stored hash can't hide an edit.
            tree.add(computed)
            prev = event.leaf_hash
            result.events += 1
            while next_cp is not None and next_cp.tree_size == tree.size:
                _check_checkpoint(result, next_cp, tree.root(), keys)
                result.checkpoints += 1
                next_cp = next(pending, None)
            expected_seq += 1

    if next_cp is not None:
        result.fail(
            f"the ledger ends at sequence {result.events} but checkpoint #{next_cp.pk} covers "
            f"{next_cp.tree_size} events: the tail was cut off",
            result.events + 1,
        )
    _check_anchors(result, checkpoints)
    return result


def ledger_verify_and_alert(*, actor: Any) -> VerifyResult:
    """Verify the ledger; a failure is itself written to the ledger as an alert event."""
    from audit.services import record

    result = ledger_verify()
    if not result.ok:
        with transaction.atomic():
            record(
                actor=actor,
                action="alert.ledger.verification_failed",
                data={
                    "first_bad_sequence": result.first_bad_sequence,
                    "problems": result.problems[:20],
                },
            )
    return result


def _check_anchors(result: VerifyResult, checkpoints: list[Checkpoint]) -> None:
    """Checkpoints written to the anchor file must still be in the database, unchanged."""
    if not settings.AUDIT_ANCHOR_FILE:
        return
    stored = {(c.tree_size, c.root_hash) for c in checkpoints}
    for anchored in read_anchor_file(Path(settings.AUDIT_ANCHOR_FILE)):
        key = (anchored["tree_size"], anchored["root_hash"])
        if key not in stored:
            result.fail(
                f"the anchor file holds a checkpoint of {anchored['tree_size']} events with root "
                f"{str(anchored['root_hash'])[:16]}… that the database no longer has",
                int(str(anchored["tree_size"])),
            )
