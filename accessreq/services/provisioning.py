"""Provisioning: telling each entitlement's connector that access starts or ends.

A task row is written in the grant's transaction and run after commit. The grant's own state never
depends on the connector: a failing connector leaves the task ``failed`` with an alert event, and
the grant keeps the times that access checks use.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.urls import reverse

from accessreq.connectors import DeliveryResult
from accessreq.errors import NotAllowed, WorkflowError
from accessreq.models import ConnectorKind, Grant, Operation, ProvisioningTask, TaskStatus
from accessreq.services.common import now
from accessreq.services.notifications import notify
from audit.services import record
from portal.models import User
from portal.roles import is_security_admin

_BODY_LIMIT = 2000


def provisioning_schedule(grant: Grant, operation: str, *, cause: str) -> ProvisioningTask | None:
    """Queue ``operation`` for ``grant`` with its connector; with no connector there is nothing to
    carry out, so it counts as confirmed at once. Call inside the grant's transaction."""
    connector = grant.entitlement.connector
    clock = now()
    field = "provisioned_at" if operation == Operation.PROVISION else "deprovisioned_at"
    if connector is None or not connector.is_active:
        setattr(grant, field, clock)
        grant.save(update_fields=[field])
        return None
    try:
        with transaction.atomic():
            task = ProvisioningTask.objects.create(
                grant=grant, operation=operation, cause=cause, connector=connector, created_at=clock
            )
    except IntegrityError:
        return None  # already queued
    if connector.kind == ConnectorKind.WEBHOOK:
        from accessreq.tasks import provisioning_run

        transaction.on_commit(lambda: provisioning_run.delay(task.pk))
    else:
        for admin in User.objects.filter(is_active=True, groups__name="security-admin").distinct():
            notify(
                key=f"provisioning:{task.pk}:admin:{admin.pk}",
                recipient=admin,
                subject=f"To do: {task.get_operation_display().lower()} for {grant.entitlement}",
                lines=[
                    f"{task.get_operation_display()} for {grant.beneficiary} on "
                    f"{grant.entitlement} "
                    f"(grant {cause}). Mark it done in Gatehouse when it is.",
                ],
                path=reverse("provisioning"),
            )
    return task


def provisioning_cancel_setup(grant: Grant, *, actor: User) -> int:
    """Cancel a set-up that had not been carried out when the grant ended, so a late retry or a
    forgotten manual task can never give back access that was taken away. Call inside the
    grant's transaction."""
    open_tasks = ProvisioningTask.objects.select_for_update().filter(
        grant=grant,
        operation=Operation.PROVISION,
        status__in=[TaskStatus.PENDING, TaskStatus.FAILED],
    )
    cancelled = 0
    for task in open_tasks:
        task.status = TaskStatus.CANCELLED
        task.save()
        record(
            actor=actor,
            action="provisioning.cancelled",
            target=task,
            data={"grant_id": grant.pk, "operation": task.operation, "attempts": task.attempts},
        )
        cancelled += 1
    return cancelled


def grant_is_live(grant: Grant) -> bool:
    return grant.revoked_at is None and grant.ended_at is None


def _confirm(task: ProvisioningTask, *, at: object) -> None:
    field = "provisioned_at" if task.operation == Operation.PROVISION else "deprovisioned_at"
    grant = Grant.objects.select_for_update().get(pk=task.grant_id)
    setattr(grant, field, at)
    grant.save(update_fields=[field])


@transaction.atomic
def provisioning_record_attempt(*, task_id: int, result: DeliveryResult) -> ProvisioningTask | None:
    """Record one delivery attempt. Success confirms the task; the last failed attempt marks it
    failed and raises an alert event. Returns None when the task had already settled."""
    task = (
        ProvisioningTask.objects.select_for_update()
        .select_related("connector", "grant__entitlement")
        .filter(pk=task_id, status=TaskStatus.PENDING)
        .first()
    )
    if task is None:
        return None
    if task.operation == Operation.PROVISION and not grant_is_live(task.grant):
        provisioning_cancel_setup(task.grant, actor=User.objects.system_actor())
        return None
    clock = now()
    task.attempts += 1
    task.last_attempt_at = clock
    task.response_status = result.status
    task.response_body = result.body[:_BODY_LIMIT]
    task.last_error = result.error[:_BODY_LIMIT]
    system = User.objects.system_actor()
    data = {
        "grant_id": task.grant_id,
        "operation": task.operation,
        "cause": task.cause,
        "connector": task.connector.name,
        "attempt": task.attempts,
        "response_status": result.status,
        "error": result.error[:200],
    }
    if result.ok:
        task.status = TaskStatus.CONFIRMED
        task.confirmed_at = clock
        task.save()
        _confirm(task, at=clock)
        record(actor=system, action="provisioning.confirmed", target=task, data=data)
    elif task.attempts >= task.connector.max_attempts:
        task.status = TaskStatus.FAILED
        task.save()
        record(actor=system, action="alert.provisioning.failed", target=task, data=data)
    else:
        task.save()
        record(actor=system, action="provisioning.attempt_failed", target=task, data=data)
    return task


@transaction.atomic
def provisioning_confirm(
    *, actor: User, task_id: int, note: str = "", http: HttpRequest | None = None
) -> ProvisioningTask:
    """A security admin marks a manual task done (or a failed webhook task done by hand)."""
    if not is_security_admin(actor):
        raise NotAllowed("No such task.")
    task = (
        ProvisioningTask.objects.select_for_update()
        .select_related("connector", "grant__entitlement")
        .filter(pk=task_id)
        .first()
    )
    if task is None:
        raise NotAllowed("No such task.")
    if task.status == TaskStatus.CONFIRMED:
        raise WorkflowError("This task was already marked done.")
    if task.status == TaskStatus.CANCELLED:
        raise WorkflowError("This set-up was cancelled because the access ended; nothing to do.")
    clock = now()
    task.status = TaskStatus.CONFIRMED
    task.confirmed_at = clock
    task.confirmed_by = actor
    task.note = note.strip()
    task.save()
    _confirm(task, at=clock)
    record(
        actor=actor,
        action="provisioning.confirmed",
        target=task,
        data={
            "grant_id": task.grant_id,
            "operation": task.operation,
            "cause": task.cause,
            "connector": task.connector.name,
            "by_hand": True,
            "note": task.note,
        },
        request=http,
    )
    return task


@transaction.atomic
def provisioning_retry(*, actor: User, task_id: int, http: HttpRequest | None = None) -> None:
    """Send a failed webhook task again, with a fresh set of attempts."""
    if not is_security_admin(actor):
        raise NotAllowed("No such task.")
    task = (
        ProvisioningTask.objects.select_for_update()
        .select_related("grant")
        .filter(pk=task_id)
        .first()
    )
    if task is None:
        raise NotAllowed("No such task.")
    if task.status != TaskStatus.FAILED:
        raise WorkflowError("Only a failed task can be retried.")
    if task.operation == Operation.PROVISION and not grant_is_live(task.grant):
        raise WorkflowError("The access has ended, so it must not be set up again.")
    task.status = TaskStatus.PENDING
    task.attempts = 0
    task.save()
    record(
        actor=actor,
        action="provisioning.retried",
        target=task,
        data={"grant_id": task.grant_id, "operation": task.operation},
        request=http,
    )
    from accessreq.tasks import provisioning_run

    transaction.on_commit(lambda: provisioning_run.delay(task.pk))
