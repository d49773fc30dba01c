"""Periodic ledger jobs: sign checkpoints, post them to the anchor webhook, verify the ledger."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import transaction

from audit import anchors
from audit.checkpoints import checkpoint_sign
from audit.models import Checkpoint
from audit.services import record
from audit.verify import ledger_verify_and_alert

log = logging.getLogger(__name__)


def _system() -> Any:
    from portal.models import User

    return User.objects.system_actor()


@shared_task(name="audit.tasks.checkpoint_sign", acks_late=True)
def checkpoint_sign_task() -> int | None:
    """Sign (and anchor) a checkpoint if events were added since the last one.

    Returns its tree size. If the anchor file cannot be written nothing is signed, an alert event
    says why, and the task fails so the worker log shows it too.
    """
    try:
        checkpoint = checkpoint_sign(actor=_system())
    except anchors.AnchorError as exc:
        with transaction.atomic():
            record(
                actor=_system(),
                action="alert.ledger.anchor_failed",
                data={"anchor": "file", "error": str(exc)[:300]},
            )
        raise
    return checkpoint.tree_size if checkpoint else None


class AnchorFailed(Exception):
    pass


@shared_task(name="audit.tasks.checkpoint_anchor", bind=True, acks_late=True, max_retries=8)
def checkpoint_anchor(self: Any, checkpoint_id: int) -> None:
    """POST a checkpoint to the anchor webhook, retried with exponential backoff.

    Receivers drop repeats by tree size. When the retries run out an alert event says so; a
    success is not an event of its own (it would be a new event after every checkpoint, so an idle
    ledger would never stop signing): the receiver's receipts, read by ``audit verify``, show it.
    """
    checkpoint = Checkpoint.objects.filter(pk=checkpoint_id).first()
    if checkpoint is None or not settings.AUDIT_ANCHOR_URL:
        return  # rolled back, from another database, or the webhook was switched off
    try:
        answer = anchors.post_to_url(checkpoint, settings.AUDIT_ANCHOR_URL)
    except OSError as exc:
        log.warning("Anchoring checkpoint %s to the webhook failed: %s", checkpoint.pk, exc)
        if self.request.retries >= self.max_retries:
            with transaction.atomic():
                record(
                    actor=_system(),
                    action="alert.ledger.anchor_failed",
                    target=checkpoint,
                    data={
                        "anchor": "webhook",
                        "error": str(exc)[:200],
                        "attempts": self.request.retries + 1,
                    },
                )
            return
        raise self.retry(
            exc=AnchorFailed(str(exc)), countdown=min(600, 2**self.request.retries * 5)
        ) from exc
    log.info("Checkpoint of %s events anchored to the webhook: %s", checkpoint.tree_size, answer)


@shared_task(name="audit.tasks.ledger_verify", acks_late=True)
def ledger_verify_task() -> bool:
    """Verify the whole ledger; a failure is itself written to the ledger as an alert."""
    return ledger_verify_and_alert(actor=_system()).ok
