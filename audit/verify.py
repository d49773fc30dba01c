"""Verification of the whole ledger: every leaf, the chain, every checkpoint and its signature.

Streams events in sequence order in chunks, so memory stays flat however long the ledger is.
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction

from audit import anchors, ledger, merkle, signing
from audit.canonical import GENESIS, PAYLOAD_FIELDS, canonical_bytes, event_payload
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
    # Anchors: what was read, what it covers, and the tail that no anchor covers yet.
    anchors_checked: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    last_anchored_size: int = 0
    unanchored_since: datetime | None = None  # time of the oldest event after it

    @property
    def anchored(self) -> bool:
        """Whether at least one anchor outside the database was read, so a cut tail shows."""
        return bool(self.anchors_checked)

    @property
    def unanchored_events(self) -> int:
        return max(0, self.events - self.last_anchored_size)

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
    readings = anchors.read_all()
    anchored_sizes = {e["tree_size"] for r in readings for e in r.entries}
    roots_at: dict[int, bytes] = {}  # recomputed roots at every anchored size
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
            if tree.size in anchored_sizes:
                roots_at[tree.size] = tree.root()
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
    _check_anchors(result, checkpoints, readings, roots_at)
    if result.last_anchored_size < result.events:
        result.unanchored_since = (
            AuditEvent.objects.filter(sequence=result.last_anchored_size + 1)
            .values_list("occurred_at", flat=True)
            .first()
        )
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


def _check_anchors(
    result: VerifyResult,
    checkpoints: list[Checkpoint],
    readings: list[anchors.AnchorReading],
    roots_at: dict[int, bytes],
) -> None:
    """Every checkpoint held by an anchor must match the events and still be in the database.

    A checkpoint deleted from the database, or events cut off together with the checkpoints that
    covered them, show up here: the anchor outside the database still has the longer tree.
    """
    stored = {(c.tree_size, c.root_hash) for c in checkpoints}
    anchored: set[int] = set()
    for reading in readings:
        if reading.error:
            result.fail(f"anchor {reading.name}: {reading.error}")
            continue
        if reading.note:
            result.warnings.append(f"anchor {reading.name}: {reading.note}; not checked")
            continue
        newest = max((e["tree_size"] for e in reading.entries), default=0)
        result.anchors_checked.append(
            f"{reading.name} ({len(reading.entries)} checkpoints, the newest of {newest} events)"
        )
        for entry in reading.entries:
            size, root = entry["tree_size"], entry["root_hash"]
            if size > result.events:
                result.fail(
                    f"anchor {reading.name} holds a checkpoint of {size} events but the ledger "
                    f"ends at sequence {result.events}: the tail was cut off (events from "
                    f"{result.events + 1} on were deleted, with the checkpoints that covered them)",
                    result.events + 1,
                )
            elif roots_at.get(size, b"").hex() != root:
                result.fail(
                    f"anchor {reading.name} holds a checkpoint of {size} events whose root the "
                    f"events no longer hash to: an event at or before sequence {size} was changed",
                    size,
                )
            elif (size, root) not in stored:
                result.fail(
                    f"anchor {reading.name} holds a checkpoint of {size} events that the database "
                    "no longer has: the checkpoint was deleted",
                    size,
                )
            else:
                anchored.add(size)
    result.last_anchored_size = max(anchored, default=0)
    if result.anchored:
        missing = [c for c in checkpoints if c.tree_size not in anchored]
        if missing:
            result.warnings.append(
                f"{len(missing)} of {len(checkpoints)} checkpoints in the database are in no "
                f"anchor (the newest such covers {missing[-1].tree_size} events)"
            )
