"""Periodic ledger jobs: sign checkpoints, anchor them outside the database, verify the ledger."""

from __future__ import annotations

import logging
import urllib.request
from pathlib import Path
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import transaction

from audit.checkpoints import anchor_line, anchor_to_file, checkpoint_sign
from audit.models import AuditEvent, Checkpoint
from audit.services import record
from audit.verify import ledger_verify_and_alert

log = logging.getLogger(__name__)


def _system() -> Any:
    from portal.models import User

    return User.objects.system_actor()


@shared_task(name="audit.tasks.checkpoint_sign", acks_late=True)
def checkpoint_sign_task() -> int | None:
    """Sign a checkpoint if events were added since the last one. Returns its tree size."""
    checkpoint = checkpoint_sign(actor=_system())
    return checkpoint.tree_size if checkpoint else None


class AnchorFailed(Exception):
    pass


@shared_task(name="audit.tasks.checkpoint_anchor", bind=True, acks_late=True, max_retries=8)
def checkpoint_anchor(self: Any, checkpoint_id: int) -> None:
    """Write a checkpoint to the anchor file and POST it to the anchor webhook (once each).

    A failing webhook is retried with exponential backoff; when the retries run out, an alert
    event says so (the checkpoint itself stays in the database either way).
    """
    checkpoint = Checkpoint.objects.filter(pk=checkpoint_id).first()
    if checkpoint is None:
        return  # rolled back or from another database: nothing to anchor
    already = AuditEvent.objects.filter(
        action="audit.checkpoint.anchored",
        target_type="audit.checkpoint",
        target_id=str(checkpoint.pk),
    ).exists()
    if already:
        return
    anchored: dict[str, object] = {}
    if settings.AUDIT_ANCHOR_FILE:
        anchor_to_file(checkpoint, Path(settings.AUDIT_ANCHOR_FILE))
        anchored["file"] = settings.AUDIT_ANCHOR_FILE
    if settings.AUDIT_ANCHOR_URL:
        body = anchor_line(checkpoint).encode()
        req = urllib.request.Request(  # noqa: S310 - URL is an http(s) setting, checked at start
            settings.AUDIT_ANCHOR_URL,
            data=body,
            headers={"Content-Type": "application/json", "User-Agent": "Gatehouse-anchor/1"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as response:  # noqa: S310
                anchored["webhook_status"] = response.status
        except OSError as exc:
            log.warning("Anchoring checkpoint %s to the webhook failed: %s", checkpoint.pk, exc)
            if self.request.retries >= self.max_retries:
                with transaction.atomic():
                    record(
                        actor=_system(),
                        action="alert.ledger.anchor_failed",
                        target=checkpoint,
                        data={"error": str(exc)[:200], "attempts": self.request.retries + 1},
                    )
                return
            raise self.retry(
                exc=AnchorFailed(str(exc)), countdown=min(600, 2**self.request.retries * 5)
            ) from exc
    if anchored:
        with transaction.atomic():
            record(
                actor=_system(),
                action="audit.checkpoint.anchored",
                target=checkpoint,
                data=anchored,
            )


@shared_task(name="audit.tasks.ledger_verify", acks_late=True)
def ledger_verify_task() -> bool:
    """Verify the whole ledger; a failure is itself written to the ledger as an alert."""
    return ledger_verify_and_alert(actor=_system()).ok
