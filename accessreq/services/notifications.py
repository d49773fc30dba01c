"""The outbox: notifications are rows written in the change's transaction and sent by a task.

A notification's ``key`` is unique, so the same event never queues two emails; the send task
marks ``sent_at`` under a row lock, so a retried task never sends one twice. A rolled-back
transaction takes its notifications (and their never-enqueued tasks) with it.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from accessreq.models import Delegation, Notification
from portal.models import User


def notify(
    *, key: str, recipient: User, subject: str, lines: Iterable[str], path: str
) -> Notification | None:
    """Queue one email to ``recipient`` linking to ``path``; a repeated ``key`` is a no-op.
    Mail for a service account goes to the people who own it."""
    if recipient.kind == User.Kind.SERVICE:
        lines = list(lines)
        for owner in recipient.owners.filter(is_active=True, kind=User.Kind.HUMAN):
            notify(
                key=f"{key}:owner:{owner.pk}",
                recipient=owner,
                subject=f"{recipient}: {subject}",
                lines=[f"About the service account {recipient}, which you own:", "", *lines],
                path=path,
            )
        return None
    if not recipient.is_active or recipient.kind != User.Kind.HUMAN or not recipient.email:
        return None
    body = "\n".join(
        [
            f"Hello {recipient.get_short_name()},",
            "",
            *lines,
            "",
            f"Open it in Gatehouse: {settings.SITE_URL.rstrip('/')}{path}",
            "",
            "You receive this because of your role in Gatehouse.",
        ]
    )
    try:
        with transaction.atomic():
            notification = Notification.objects.create(
                key=key[:200], recipient=recipient, subject=subject[:200], body=body
            )
    except IntegrityError:
        return None  # already queued by an earlier run of the same job
    from accessreq.tasks import send_notification

    transaction.on_commit(lambda: send_notification.delay(notification.pk))
    return notification


def notify_with_delegates(
    *, key: str, recipient: User, subject: str, lines: Iterable[str], path: str
) -> None:
    """Notify ``recipient`` and whoever currently stands in for them as a delegate."""
    lines = list(lines)
    notify(key=key, recipient=recipient, subject=subject, lines=lines, path=path)
    delegates = Delegation.objects.in_force(timezone.now()).filter(delegator=recipient)
    for delegation in delegates.select_related("delegate"):
        notify(
            key=f"{key}:delegate:{delegation.delegate_id}",
            recipient=delegation.delegate,
            subject=subject,
            lines=[*lines, "", f"You receive this as the delegate of {recipient}."],
            path=path,
        )


def notification_send(notification_id: int) -> bool:
    """Send one queued email unless it was already sent; True when this call sent it."""
    with transaction.atomic():
        notification = (
            Notification.objects.select_for_update()
            .select_related("recipient")
            .filter(pk=notification_id, sent_at__isnull=True)
            .first()
        )
        if notification is None:
            return False
        notification.attempts += 1
        failure: Exception | None = None
        try:
            send_mail(
                subject=f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}{notification.subject}",
                message=notification.body,
                from_email=None,
                recipient_list=[notification.recipient.email],
            )
        except Exception as exc:  # counted below, then raised for the task to log
            failure = exc
        else:
            notification.sent_at = timezone.now()
        # A failed attempt is counted too, so the resend job gives up after a few.
        notification.save(update_fields=["attempts", "sent_at"])
    if failure is not None:
        raise failure
    return True
