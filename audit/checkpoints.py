"""Signing checkpoints (signed tree heads), anchoring them outside the database, rotating keys."""

from __future__ import annotations

import copy
import logging
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit import anchors, ledger, merkle, signing
from audit.models import AuditEvent, Checkpoint, SigningKey
from audit.services import database_now, lock_ledger, record

log = logging.getLogger(__name__)


def _ensure_published(key_id: str, public_hex: str) -> None:
    SigningKey.objects.get_or_create(
        key_id=key_id, defaults={"public_key": public_hex, "created_at": timezone.now()}
    )


class _Frontier:
    """The Merkle frontier of the ledger's first ``size`` leaves, kept between signings.

    Valid only while the leaf hash at ``size`` is still ``last_leaf``: that hash commits to every
    event before it (each event carries its predecessor's hash), so a match proves the prefix is
    the one the frontier was built from. Without it each signing would re-read the whole ledger.
    """

    size: int = 0
    last_leaf: str = ""
    tree: merkle.StreamingRoot | None = None


def _frontier_up_to(size: int) -> merkle.StreamingRoot:
    """A StreamingRoot over the first ``size`` leaves, from the cache where it still holds."""
    tree = None
    if _Frontier.tree is not None and 0 < _Frontier.size <= size:
        stored = (
            AuditEvent.objects.filter(sequence=_Frontier.size)
            .values_list("leaf_hash", flat=True)
            .first()
        )
        if stored == _Frontier.last_leaf:
            tree = copy.deepcopy(_Frontier.tree)
    if tree is None:
        tree = merkle.StreamingRoot()
    for leaf in ledger.leaf_hashes(tree.size, size):
        tree.add(leaf)
    return tree


def _remember(tree: merkle.StreamingRoot, last_leaf: str) -> None:
    _Frontier.size, _Frontier.last_leaf, _Frontier.tree = tree.size, last_leaf, copy.deepcopy(tree)


def checkpoint_sign(*, actor: object) -> Checkpoint | None:
    """Sign the Merkle root over every committed event, its own ``audit.checkpoint.signed`` event
    included, and anchor it outside the database before the transaction commits.

    The anchor file is appended and fsynced inside the signing transaction: if that fails,
    ``AnchorError`` is raised and nothing (checkpoint or event) is committed. The webhook anchor
    is posted by a retried task after commit. Safe to run from two beats at once: the second finds
    the first's checkpoint and stops. Returns the new checkpoint, or None when nothing was new.
    """
    key = signing.signing_key()
    public_hex = signing.public_bytes(key.public_key()).hex()
    key_id = signing.key_id_of(key.public_key())
    # The bulk of the tree is hashed outside the lock: committed events never change.
    tree = _frontier_up_to(ledger.tree_size())
    with transaction.atomic():
        lock_ledger()
        head = ledger.tree_size()
        latest = Checkpoint.objects.order_by("-tree_size", "-id").first()
        if head == 0 or (latest is not None and latest.tree_size >= head):
            return None
        for leaf in ledger.leaf_hashes(tree.size, head):  # events that came in meanwhile
            tree.add(leaf)
        _ensure_published(key_id, public_hex)
        size = head + 1
        signed = record(
            actor=actor,
            action="audit.checkpoint.signed",
            target=("audit.checkpoint", size, f"checkpoint of {size} events"),
            data={"tree_size": size, "key_id": key_id, "anchors": anchors.configured()},
        )
        if signed.sequence != size:  # cannot happen while the ledger lock is held
            raise RuntimeError(f"checkpoint event got sequence {signed.sequence}, not {size}")
        tree.add(bytes.fromhex(signed.leaf_hash))
        checkpoint = Checkpoint(
            tree_size=size, root_hash=tree.root().hex(), signed_at=database_now(), key_id=key_id
        )
        checkpoint.signature = key.sign(ledger.checkpoint_message(checkpoint)).hex()
        checkpoint.save(force_insert=True)
        if settings.AUDIT_ANCHOR_FILE:
            # Last, so the window between the fsync and the commit is as short as it can be.
            anchors.append_to_file(checkpoint, Path(settings.AUDIT_ANCHOR_FILE))
        if settings.AUDIT_ANCHOR_URL:
            transaction.on_commit(lambda: _enqueue_webhook_anchor(checkpoint.pk))
        last_leaf = signed.leaf_hash
    _remember(tree, last_leaf)
    return checkpoint


def _enqueue_webhook_anchor(checkpoint_id: int) -> None:
    from audit.tasks import checkpoint_anchor

    checkpoint_anchor.delay(checkpoint_id)


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
