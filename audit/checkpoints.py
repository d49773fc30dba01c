"""Signing checkpoints (signed tree heads), anchoring them outside the database, rotating keys."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit import ledger, signing
from audit.canonical import format_time
from audit.models import Checkpoint, SigningKey
from audit.services import database_now, lock_ledger, record

log = logging.getLogger(__name__)


def _ensure_published(key_id: str, public_hex: str) -> None:
    SigningKey.objects.get_or_create(
        key_id=key_id, defaults={"public_key": public_hex, "created_at": timezone.now()}
    )


def checkpoint_sign(*, actor: object) -> Checkpoint | None:
    """Sign the Merkle root over every committed event, unless the newest checkpoint has it.

    Safe to run from two beats at once: the second finds the first's checkpoint and stops.
    Returns the new checkpoint, or None when there was nothing new to sign.
    """
    key = signing.signing_key()
    public_hex = signing.public_bytes(key.public_key()).hex()
    key_id = signing.key_id_of(key.public_key())
    size = ledger.tree_size()
    if size == 0:
        return None
    # The root is computed outside any lock: events up to ``size`` are committed and immutable.
    root = ledger.root_at(size).hex()
    with transaction.atomic():
        lock_ledger()
        latest = Checkpoint.objects.order_by("-tree_size", "-id").first()
        if latest is not None and latest.tree_size >= size:
            return None
        _ensure_published(key_id, public_hex)
        checkpoint = Checkpoint(
            tree_size=size, root_hash=root, signed_at=database_now(), key_id=key_id
        )
        checkpoint.signature = key.sign(ledger.checkpoint_message(checkpoint)).hex()
        checkpoint.save(force_insert=True)
        record(
            actor=actor,
            action="audit.checkpoint.signed",
            target=checkpoint,
            data={"tree_size": size, "root_hash": root, "key_id": key_id},
        )
        transaction.on_commit(lambda: _enqueue_anchor(checkpoint.pk))
    return checkpoint


def _enqueue_anchor(checkpoint_id: int) -> None:
    from audit.tasks import checkpoint_anchor

    checkpoint_anchor.delay(checkpoint_id)


def anchor_line(checkpoint: Checkpoint) -> str:
    return json.dumps(
        {
            "tree_size": checkpoint.tree_size,
            "root_hash": checkpoint.root_hash,
            "signed_at": format_time(checkpoint.signed_at),
            "key_id": checkpoint.key_id,
            "signature": checkpoint.signature,
        },
        sort_keys=True,
        separators=(",", ":"),
    )


def anchor_to_file(checkpoint: Checkpoint, path: Path) -> None:
    """Append the checkpoint to a JSON Lines file kept outside the database (once per size)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = anchor_line(checkpoint)
    if path.exists():
        with path.open() as handle:
            if any(existing.strip() == line for existing in handle):
                return
    with path.open("a") as handle:
        handle.write(line + "\n")
        handle.flush()


def read_anchor_file(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    with path.open() as handle:
        return [json.loads(line) for line in handle if line.strip()]


@transaction.atomic
def key_rotate(*, actor: object) -> str:
    """Replace the file-based signing key; the old public key stays published. Returns new id."""
    if settings.AUDIT_SIGNING_KEY:
        raise ValueError(
            "The signing key comes from AUDIT_SIGNING_KEY; put the new PEM there and restart. "
            "Use AUDIT_SIGNING_KEY_FILE to let `manage.py audit rotate-key` rotate it."
        )
    path = Path(settings.AUDIT_SIGNING_KEY_FILE)
    old = signing.signing_key()
    old_id = signing.key_id_of(old.public_key())
    _ensure_published(old_id, signing.public_bytes(old.public_key()).hex())
    retired = path.with_name(f"{path.name}.{old_id}.retired")
    path.rename(retired)
    new = signing.write_new_key(path)
    new_id = signing.key_id_of(new.public_key())
    _ensure_published(new_id, signing.public_bytes(new.public_key()).hex())
    SigningKey.objects.filter(key_id=old_id).update(retired_at=timezone.now())
    record(
        actor=actor,
        action="audit.key.rotated",
        data={"old_key_id": old_id, "new_key_id": new_id},
    )
    return new_id
