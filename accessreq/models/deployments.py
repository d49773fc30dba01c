"""Deployment approvals: a pipeline asks to deploy one commit of a system to an environment,
with the checks it claims; people named by the environment's policy decide, stage by stage."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from accessreq.deployment_states import DeploymentState
from portal.history import get_history_user


class DeploymentQuerySet(models.QuerySet["DeploymentApproval"]):
    def of_account(self, account: Any) -> DeploymentQuerySet:
        """What a pipeline may read: its own service account's deployments only."""
        return self.filter(service_account=account)

    def for_listing(self) -> DeploymentQuerySet:
        return self.select_related("service_account", "system", "environment", "entitlement")


class DeploymentApproval(models.Model):
    """A request to deploy ``commit_sha`` of ``system`` to ``environment``, opened by a service
    account's pipeline. ``stages`` is the policy frozen at creation; once approved it is valid
    for that one commit until ``expires_at`` and is used by at most one token."""

    service_account = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="deployments"
    )
    token = models.ForeignKey(
        "accessreq.ApiToken",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="deployments_opened",
        help_text="The token the pipeline opened it with.",
    )
    system = models.ForeignKey(
        "accessreq.System", on_delete=models.PROTECT, related_name="deployments"
    )
    environment = models.ForeignKey(
        "accessreq.Environment", on_delete=models.PROTECT, related_name="deployments"
    )
    entitlement = models.ForeignKey(
        "accessreq.Entitlement",
        on_delete=models.PROTECT,
        related_name="deployments",
        help_text="The entitlement through which the account holds the scope (its policy routes).",
    )
    scope = models.CharField(max_length=50, default="deploy")
    commit_sha = models.CharField(max_length=40)
    repository = models.CharField(max_length=200, blank=True)
    ref = models.CharField(max_length=200, blank=True)
    run_id = models.CharField(max_length=200, blank=True)
    stage_name = models.CharField(max_length=200, blank=True, help_text="The pipeline's stage.")
    checks = models.JSONField(default=dict, blank=True, help_text="Check name → passed/failed/…")
    artifact_digest = models.CharField(max_length=200, blank=True)
    links = models.JSONField(default=list, blank=True)
    description = models.TextField(blank=True)
    callback_url = models.URLField(max_length=500, blank=True)
    callback_secret_encrypted = models.TextField(blank=True, editable=False)
    callback_delivered_at = models.DateTimeField(null=True, blank=True)
    callback_attempts = models.PositiveSmallIntegerField(default=0)
    callback_error = models.CharField(max_length=300, blank=True)

    state = models.CharField(
        max_length=10, choices=DeploymentState.choices, default=DeploymentState.PENDING
    )
    stages = models.JSONField(default=list, blank=True)
    current_stage = models.PositiveSmallIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    stage_opened_at = models.DateTimeField(
        null=True, blank=True, help_text="When the current stage began waiting (else created_at)."
    )
    escalated_at = models.DateTimeField(
        null=True, blank=True, help_text="When the current stage was escalated to security admins."
    )
    timeout_at = models.DateTimeField(help_text="A pending approval expires at this time.")
    decided_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="An approval is valid until this time (database clock)."
    )
    used_at = models.DateTimeField(null=True, blank=True)
    used_by_token = models.ForeignKey(
        "accessreq.ApiToken",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="deployments_used",
    )

    history = HistoricalRecords(
        get_user=get_history_user,
        excluded_fields=[
            "callback_secret_encrypted",
            "callback_delivered_at",
            "callback_attempts",
            "callback_error",
        ],
    )

    objects = DeploymentQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["state", "timeout_at"], name="deployment_state_timeout"),
            models.Index(
                fields=["service_account", "environment", "commit_sha"],
                name="deployment_account_commit",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["service_account", "system", "environment", "commit_sha"],
                condition=Q(state=DeploymentState.PENDING),
                name="one_pending_deployment_per_commit",
            ),
            models.CheckConstraint(
                condition=Q(state=DeploymentState.PENDING)
                | Q(state=DeploymentState.EXPIRED)
                | Q(decided_at__isnull=False),
                name="deployment_decided_has_time",
            ),
            models.CheckConstraint(
                condition=~Q(state__in=[DeploymentState.APPROVED, DeploymentState.USED])
                | Q(expires_at__isnull=False),
                name="deployment_approved_expires",
            ),
        ]

    def __str__(self) -> str:
        return f"Deployment #{self.pk}: {self.system} {self.commit_sha[:12]} to {self.environment}"

    @property
    def short_sha(self) -> str:
        return self.commit_sha[:12]

    def stage(self, position: int) -> dict[str, Any] | None:
        for stage in self.stages:
            if stage["position"] == position:
                return dict(stage)
        return None

    def set_callback_secret(self, secret: str) -> None:
        from portal.crypto import encrypt

        self.callback_secret_encrypted = encrypt(secret) if secret else ""

    def callback_secret(self) -> str:
        from portal.crypto import decrypt

        return decrypt(self.callback_secret_encrypted) if self.callback_secret_encrypted else ""

    def pipeline_context(self) -> dict[str, str]:
        """What the ledger's ``pipeline`` column records for this deployment."""
        fields = {
            "commit_sha": self.commit_sha,
            "run_id": self.run_id,
            "stage": self.stage_name,
            "repository": self.repository,
        }
        return {k: v for k, v in fields.items() if v}


class DeploymentAssignment(models.Model):
    """A person who may decide ``stage`` of a deployment approval, written when the stage
    opens (as :class:`accessreq.models.StageAssignment` is for requests)."""

    deployment = models.ForeignKey(
        DeploymentApproval, on_delete=models.PROTECT, related_name="assignments"
    )
    stage = models.PositiveSmallIntegerField()
    principal = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="deployment_assignments"
    )
    reason = models.CharField(max_length=10, default="rule")
    created_at = models.DateTimeField(default=timezone.now)

    history = HistoricalRecords(get_user=get_history_user)

    class Meta:
        ordering = ["deployment", "stage", "principal"]
        indexes = [models.Index(fields=["principal", "stage"], name="deploy_assignment_principal")]
        constraints = [
            models.UniqueConstraint(
                fields=["deployment", "stage", "principal"], name="one_deploy_assignment"
            )
        ]

    def __str__(self) -> str:
        return f"{self.principal} may decide stage {self.stage} of deployment #{self.deployment_id}"


class DeploymentDecision(models.Model):
    """One person's approval or denial at one stage; a person decides a deployment once."""

    deployment = models.ForeignKey(
        DeploymentApproval, on_delete=models.PROTECT, related_name="decisions"
    )
    stage = models.PositiveSmallIntegerField()
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="deployment_decisions"
    )
    # Set when ``approver`` decided as a delegate of this assigned approver.
    on_behalf_of = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="deployment_decisions_delegated",
    )
    decision = models.CharField(max_length=7, choices=[("approve", "Approved"), ("deny", "Denied")])
    comment = models.TextField(blank=True)
    mfa_method = models.CharField(max_length=20, blank=True)
    mfa_age_seconds = models.PositiveIntegerField(null=True, blank=True)
    decided_at = models.DateTimeField(default=timezone.now)

    history = HistoricalRecords(get_user=get_history_user)

    class Meta:
        ordering = ["deployment", "stage", "decided_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["deployment", "approver"], name="one_decision_per_person_per_deployment"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_decision_display()} by {self.approver} at stage {self.stage}"
