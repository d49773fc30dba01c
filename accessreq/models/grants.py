"""Grants (who holds what, from when until when), connectors and provisioning work."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.validators import URLValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from accessreq.models.catalog import Entitlement
from portal.history import get_history_user


class GrantState(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    ACTIVE = "active", "Active"
    EXPIRED = "expired", "Expired"
    REVOKED = "revoked", "Revoked"


LIVE_GRANT_STATES = (GrantState.SCHEDULED, GrantState.ACTIVE)


class GrantQuerySet(models.QuerySet["Grant"]):
    def visible_to(self, user: Any) -> GrantQuerySet:
        """Grants a person may open: their own, those on what they own, all for admins/auditors."""
        from portal.roles import can_read_audit

        if not getattr(user, "is_authenticated", False):
            return self.none()
        if can_read_audit(user):
            return self.all()
        return self.filter(
            Q(beneficiary=user) | Q(entitlement__owners=user) | Q(entitlement__system__owners=user)
        ).distinct()

    def revocable_by(self, user: Any) -> GrantQuerySet:
        """Grants a person may revoke: their own, those on what they own; security admins: all."""
        from portal.roles import is_security_admin

        if not getattr(user, "is_authenticated", False):
            return self.none()
        if is_security_admin(user):
            return self.all()
        return self.filter(
            Q(beneficiary=user) | Q(entitlement__owners=user) | Q(entitlement__system__owners=user)
        ).distinct()

    def live(self) -> GrantQuerySet:
        return self.filter(state__in=LIVE_GRANT_STATES)

    def for_listing(self) -> GrantQuerySet:
        return self.select_related(
            "beneficiary", "entitlement__system", "entitlement__environment", "revoked_by"
        )


class Grant(models.Model):
    """``beneficiary`` holds ``entitlement`` from ``starts_at`` until ``expires_at`` unless revoked.

    Whether access is held *now* is decided against the database clock by
    :func:`accessreq.selectors.holds_scope`, never by ``state`` alone, so access ends on time even
    when the expiry job is late. ``state`` is what the jobs and connectors have caught up with.
    """

    beneficiary = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="grants"
    )
    entitlement = models.ForeignKey(Entitlement, on_delete=models.PROTECT, related_name="grants")
    request = models.ForeignKey(
        "accessreq.AccessRequest", on_delete=models.PROTECT, related_name="origin_grants"
    )
    state = models.CharField(max_length=10, choices=GrantState.choices)
    break_glass = models.BooleanField(default=False)
    starts_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="grants_revoked",
    )
    revoke_reason = models.TextField(blank=True)
    provisioned_at = models.DateTimeField(
        null=True, blank=True, help_text="When the connector confirmed the access was set up."
    )
    deprovisioned_at = models.DateTimeField(
        null=True, blank=True, help_text="When the connector confirmed the access was removed."
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    warned_24h_for = models.DateTimeField(null=True, blank=True)
    warned_1h_for = models.DateTimeField(null=True, blank=True)

    # last_used_at is a usage stamp the authorization API writes at most hourly with a cheap
    # conditional update (services.grants.grant_touch): it stays out of the history, as the API
    # token's does, so that update doesn't bypass a tracked field.
    history = HistoricalRecords(get_user=get_history_user, excluded_fields=["last_used_at"])

    objects = GrantQuerySet.as_manager()

    class Meta:
        ordering = ["-starts_at", "-pk"]
        indexes = [
            models.Index(fields=["state", "expires_at"], name="grant_state_expires"),
            models.Index(fields=["beneficiary", "state"], name="grant_beneficiary_state"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["beneficiary", "entitlement"],
                condition=Q(state__in=LIVE_GRANT_STATES),
                name="one_live_grant_per_entitlement",
                violation_error_message="This person already holds this access.",
            ),
            models.CheckConstraint(
                condition=Q(expires_at__gt=models.F("starts_at")), name="grant_ends_after_start"
            ),
            models.CheckConstraint(
                condition=Q(state=GrantState.REVOKED, revoked_at__isnull=False)
                | (~Q(state=GrantState.REVOKED) & Q(revoked_at__isnull=True)),
                name="grant_revoked_iff_revoked_at",
            ),
        ]

    def __str__(self) -> str:
        return f"Grant #{self.pk}: {self.entitlement} for {self.beneficiary}"

    @property
    def is_break_glass(self) -> bool:
        return self.break_glass


class ConnectorKind(models.TextChoices):
    MANUAL = "manual", "Manual (a person does it and marks it done)"
    WEBHOOK = "webhook", "Webhook (signed HTTP POST)"


class Connector(models.Model):
    """Where grants and revocations are carried out: a person's task list or a signed webhook."""

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=10, choices=ConnectorKind.choices)
    url = models.URLField(
        blank=True,
        validators=[URLValidator(schemes=["http", "https"])],
        help_text="Webhook only: where events are POSTed.",
    )
    secret_encrypted = models.TextField(
        blank=True, editable=False, help_text="Webhook signing secret, encrypted at rest."
    )
    timeout_seconds = models.PositiveSmallIntegerField(default=10)
    max_attempts = models.PositiveSmallIntegerField(
        default=5, help_text="Deliveries tried (with backoff) before an alert is raised."
    )
    is_active = models.BooleanField(default=True)

    history = HistoricalRecords(get_user=get_history_user, excluded_fields=["secret_encrypted"])

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind="webhook") | ~Q(url=""), name="webhook_connector_has_url"
            )
        ]

    def __str__(self) -> str:
        return self.name

    def set_secret(self, secret: str) -> None:
        from portal.crypto import encrypt

        self.secret_encrypted = encrypt(secret) if secret else ""

    def secret(self) -> str:
        from portal.crypto import decrypt

        return decrypt(self.secret_encrypted) if self.secret_encrypted else ""


class Operation(models.TextChoices):
    PROVISION = "provision", "Set up access"
    DEPROVISION = "deprovision", "Remove access"


class TaskStatus(models.TextChoices):
    PENDING = "pending", "Waiting"
    CONFIRMED = "confirmed", "Confirmed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled: access ended first"


class ProvisioningTaskQuerySet(models.QuerySet["ProvisioningTask"]):
    def for_listing(self) -> ProvisioningTaskQuerySet:
        return self.select_related(
            "connector",
            "confirmed_by",
            "grant__beneficiary",
            "grant__entitlement__system",
            "grant__entitlement__environment",
        )


class ProvisioningTask(models.Model):
    """One operation a connector must carry out for a grant, and what came of it.

    A failure never changes the grant: access decisions use the grant's times, and the task stays
    ``failed`` with an alert until someone retries it or does it by hand.
    """

    grant = models.ForeignKey(Grant, on_delete=models.PROTECT, related_name="provisioning_tasks")
    operation = models.CharField(max_length=12, choices=Operation.choices)
    cause = models.CharField(
        max_length=30, help_text="The grant event: activated, expired, revoked."
    )
    connector = models.ForeignKey(Connector, on_delete=models.PROTECT, related_name="tasks")
    status = models.CharField(max_length=10, choices=TaskStatus.choices, default=TaskStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="provisioning_confirmed",
    )
    note = models.TextField(blank=True)

    history = HistoricalRecords(get_user=get_history_user)

    objects = ProvisioningTaskQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["grant", "operation"], name="one_task_per_grant_operation"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_operation_display()} for grant #{self.grant_id} via {self.connector}"


class Notification(models.Model):
    """An email in the outbox. ``key`` makes each notification exist once, and ``sent_at`` makes
    a retried task skip one already sent."""

    key = models.CharField(max_length=200, unique=True)
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    subject = models.CharField(max_length=200)
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    history = HistoricalRecords(get_user=get_history_user)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["sent_at", "created_at"], name="notification_unsent")]

    def __str__(self) -> str:
        return f"{self.subject} → {self.recipient}"
