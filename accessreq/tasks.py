"""Celery tasks of the access workflow. Each takes ids, calls a service and exits quietly when
the state has moved on; the beat jobs are safe to run twice or from two workers."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.conf import settings

from accessreq.connectors import backend
from accessreq.models import ProvisioningTask, TaskStatus
from portal.history import acting_as
from portal.models import User


def _system() -> User:
    return User.objects.system_actor()


@shared_task(acks_late=True)
def send_notification(notification_id: int) -> bool:
    from accessreq.services.notifications import notification_send

    with acting_as(_system()):
        return notification_send(notification_id)


@shared_task(acks_late=True)
def notifications_resend() -> int:
    """Send what is still unsent after a minute (the broker was down, a worker died)."""
    from datetime import timedelta

    from django.utils import timezone

    from accessreq.models import Notification

    cutoff = timezone.now() - timedelta(minutes=1)
    ids = list(
        Notification.objects.filter(sent_at__isnull=True, created_at__lte=cutoff, attempts__lt=5)
        .order_by("created_at")
        .values_list("pk", flat=True)[:500]
    )
    for pk in ids:
        send_notification.delay(pk)
    return len(ids)


@shared_task(acks_late=True)
def grants_expire() -> int:
    from accessreq.services.grants import grants_expire_due

    with acting_as(_system()):
        return grants_expire_due()


@shared_task(acks_late=True)
def grants_activate() -> int:
    from accessreq.services.grants import grants_activate_due

    with acting_as(_system()):
        return grants_activate_due()


@shared_task(acks_late=True)
def expiry_warnings() -> int:
    from accessreq.services.grants import expiry_warnings_send

    with acting_as(_system()):
        return expiry_warnings_send()


@shared_task(acks_late=True)
def requests_sweep() -> dict[str, int]:
    """Time out, escalate, and alert on overdue break-glass reviews."""
    from accessreq.services.breakglass import break_glass_overdue_alerts
    from accessreq.services.requests import requests_escalate, requests_time_out

    with acting_as(_system()):
        return {
            "timed_out": requests_time_out(),
            "escalated": requests_escalate(),
            "break_glass_overdue": break_glass_overdue_alerts(),
        }


@shared_task(bind=True, acks_late=True, max_retries=None)
def provisioning_run(self: Any, task_id: int) -> str:
    """Deliver one provisioning task; failed attempts retry with exponential backoff until the
    connector's ``max_attempts``, then the service marks it failed and raises an alert."""
    from accessreq.services.provisioning import provisioning_record_attempt

    while True:
        task = (
            ProvisioningTask.objects.select_related(
                "connector",
                "grant__beneficiary",
                "grant__entitlement__system",
                "grant__entitlement__environment",
            )
            .filter(pk=task_id, status=TaskStatus.PENDING)
            .first()
        )
        if task is None:
            return "settled"
        grant = task.grant
        if task.operation == "provision" and (grant.revoked_at or grant.ended_at):
            return "access ended before set-up"  # the grant's end cancels this task
        result = backend(task.connector.kind)(task)
        if result is None:
            return "waiting for a person"
        with acting_as(_system()):
            updated = provisioning_record_attempt(task_id=task_id, result=result)
        if updated is None or updated.status != TaskStatus.PENDING:
            return updated.status if updated else "settled"
        if self.request.is_eager:
            # Run in-process (tests, CELERY_TASK_ALWAYS_EAGER): there is no queue to come back
            # from, and an eager retry raises instead of rescheduling, so try again at once.
            continue
        base = settings.PROVISIONING_RETRY_SECONDS
        raise self.retry(countdown=min(base * 2 ** (updated.attempts - 1), 3600))


@shared_task(acks_late=True)
def campaign_launch_due(template_id: int) -> int | None:
    """Beat: launch this period's campaign of a template (idempotent; resumes a broken launch)."""
    from accessreq.models import CampaignTemplate
    from accessreq.services.campaigns import campaign_launch

    if not CampaignTemplate.objects.filter(pk=template_id, is_active=True).exists():
        return None
    system = _system()
    with acting_as(system):
        return campaign_launch(template_id=template_id, actor=system).pk


@shared_task(acks_late=True)
def campaigns_daily() -> dict[str, int]:
    """Beat: finish interrupted launches, send reminders and escalations, close due campaigns."""
    from accessreq.campaign_states import CampaignState
    from accessreq.models import Campaign
    from accessreq.services.campaigns import campaign_launch, campaigns_close_due, reminders_send

    system = _system()
    with acting_as(system):
        resumed = 0
        for campaign in Campaign.objects.filter(state=CampaignState.LAUNCHING):
            campaign_launch(template_id=campaign.template_id, actor=system, at=campaign.launched_at)
            resumed += 1
        return {
            "resumed": resumed,
            "reminded": reminders_send(),
            "closed": campaigns_close_due(),
        }


@shared_task(acks_late=True)
def token_expiry_reminders() -> int:
    from accessreq.services.tokens import token_expiry_reminders_send

    with acting_as(_system()):
        return token_expiry_reminders_send()


@shared_task(acks_late=True)
def deployments_expire() -> int:
    """Beat: expire deployment approvals nobody decided or used in time."""
    from accessreq.services.deployments import deployments_expire as expire_due

    with acting_as(_system()):
        return expire_due()


@shared_task(bind=True, acks_late=True, max_retries=None)
def deployment_callback(self: Any, deployment_id: int, state: str) -> str:
    """POST the signed decision callback; failures retry with exponential backoff until
    ``DEPLOYMENT_CALLBACK_ATTEMPTS``."""
    from accessreq.services.deployment_callbacks import deployment_callback_attempt

    while True:
        outcome = deployment_callback_attempt(deployment_id=deployment_id, state=state)
        if outcome is not False:
            return "delivered" if outcome else "settled"
        if self.request.is_eager:
            continue  # no queue to come back from in-process (tests); try again at once
        attempts = settings.DEPLOYMENT_CALLBACK_RETRY_SECONDS
        raise self.retry(countdown=min(attempts * 2**self.request.retries, 3600))


@shared_task(acks_late=True)
def report_export_build(export_id: int) -> bool:
    from accessreq.services.reports import report_export_build as build

    with acting_as(_system()):
        return build(export_id, actor=_system())


@shared_task(acks_late=True)
def report_exports_sweep() -> dict[str, int]:
    from accessreq.services.reports import report_exports_sweep as sweep

    with acting_as(_system()):
        return sweep(actor=_system())


@shared_task(acks_late=True)
def people_inactivity_sweep() -> dict[str, int]:
    from accessreq.services.lifecycle import people_inactivity_sweep as sweep

    return sweep()


@shared_task(acks_late=True)
def deployments_escalate() -> int:
    """Beat: add the security admins to deployment stages that waited too long."""
    from accessreq.services.deployments import deployments_escalate as escalate

    with acting_as(_system()):
        return escalate()
