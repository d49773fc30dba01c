"""Access requests, the decisions on them, and approvers' delegations."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from accessreq.models.catalog import Entitlement
from accessreq.states import OPEN_STATES, RequestState
from portal.history import get_history_user


class RequestKind(models.TextChoices):
    NEW = "new", "New access"
    EXTENSION = "extension", "Extension"
    BREAK_GLASS = "break_glass", "Break-glass"
    BIRTHRIGHT = "birthright", "Birthright (team)"


class AccessRequestQuerySet(models.QuerySet["AccessRequest"]):
    def visible_to(self, user: Any) -> AccessRequestQuerySet:
        """Requests a person may open: their own; ones they were asked to decide or review (or
        stand in for someone who was); ones on what they own; all for security admins and
        auditors."""
        from django.utils import timezone

        from portal.roles import can_read_audit

        if not getattr(user, "is_authenticated", False):
            return self.none()
        if can_read_audit(user):
            return self.all()
        delegators = Delegation.objects.in_force(timezone.now()).filter(delegate=user)
        return self.filter(
            Q(requester=user)
            | Q(beneficiary=user)
            | Q(approvals__approver=user)
            | Q(assignments__principal=user)
            | Q(assignments__principal__in=delegators.values("delegator"))
            | Q(entitlement__owners=user)
            | Q(entitlement__system__owners=user)
        ).distinct()

    def open(self) -> AccessRequestQuerySet:
        return self.filter(state__in=OPEN_STATES)

    def for_listing(self) -> AccessRequestQuerySet:
        return self.select_related(
            "requester", "beneficiary", "entitlement__system", "entitlement__environment"
        )


class AccessRequest(models.Model):
    """A request for one entitlement for one beneficiary, and its path through the state table.

    ``stages`` is the approval policy as it stood at submission, so a later policy edit does not
    change the rules for a request already in flight.
    """

    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="requests_made"
    )
    beneficiary = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="requests_for"
    )
    entitlement = models.ForeignKey(Entitlement, on_delete=models.PROTECT, related_name="requests")
    kind = models.CharField(max_length=12, choices=RequestKind.choices, default=RequestKind.NEW)
    justification = models.TextField()
    ticket = models.CharField(max_length=100, blank=True)
    incident = models.CharField(max_length=100, blank=True)
    duration = models.DurationField()
    requested_start = models.DateTimeField(null=True, blank=True)
    state = models.CharField(
        max_length=10, choices=RequestState.choices, default=RequestState.PENDING
    )
    stages = models.JSONField(default=list, blank=True)
    current_stage = models.PositiveSmallIntegerField(default=0)
    stage_opened_at = models.DateTimeField(null=True, blank=True)
    grant = models.ForeignKey(
        "accessreq.Grant", null=True, blank=True, on_delete=models.PROTECT, related_name="requests"
    )
    created_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)
    timeout_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    # Break-glass: the after-the-fact review.
    review_due_at = models.DateTimeField(null=True, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="break_glass_reviews",
    )
    review_comment = models.TextField(blank=True)
    review_overdue_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords(get_user=get_history_user)

    objects = AccessRequestQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["state", "created_at"], name="request_state_created"),
            models.Index(fields=["beneficiary", "state"], name="request_beneficiary_state"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["beneficiary", "entitlement"],
                condition=Q(state=RequestState.PENDING),
                name="one_pending_request_per_entitlement",
                violation_error_message="There is already a pending request for this access.",
            ),
            models.CheckConstraint(
                condition=Q(duration__gt=timedelta(0)),
                name="request_duration_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"Request #{self.pk}: {self.entitlement} for {self.beneficiary}"

    @property
    def is_break_glass(self) -> bool:
        return self.kind == RequestKind.BREAK_GLASS

    @property
    def on_behalf(self) -> bool:
        return self.requester_id != self.beneficiary_id

    def stage(self, position: int) -> dict[str, Any] | None:
        for stage in self.stages:
            if stage["position"] == position:
                return dict(stage)
        return None


class Decision(models.TextChoices):
    APPROVE = "approve", "Approved"
    DENY = "deny", "Denied"


class Approval(models.Model):
    """One decision by one person at one stage of a request, with its comment and MFA context.

    A person decides at most once per request, so nobody satisfies two stages.
    """

    request = models.ForeignKey(AccessRequest, on_delete=models.PROTECT, related_name="approvals")
    stage = models.PositiveSmallIntegerField()
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="approvals_given"
    )
    on_behalf_of = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="approvals_delegated",
        help_text="The approver this person stood in for as a delegate.",
    )
    decision = models.CharField(max_length=7, choices=Decision.choices)
    comment = models.TextField(blank=True)
    mfa_method = models.CharField(max_length=20, blank=True)
    mfa_age_seconds = models.PositiveIntegerField(null=True, blank=True)
    decided_at = models.DateTimeField(default=timezone.now)

    history = HistoricalRecords(get_user=get_history_user)

    class Meta:
        ordering = ["request", "stage", "decided_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["request", "approver"], name="one_decision_per_person_per_request"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_decision_display()} by {self.approver} at stage {self.stage}"


class AssignmentReason(models.TextChoices):
    RULE = "rule", "Named by the policy"
    FALLBACK = "fallback", "Nobody else could decide"
    ESCALATION = "escalation", "Escalated after waiting too long"


class StageAssignment(models.Model):
    """A person who may decide ``stage`` of a request (stage 0: review a break-glass use).

    Written when the stage opens, from the policy's approver rule, so the inbox is one indexed
    query and the people who were asked are on record. Delegates act through their delegator's
    assignment.
    """

    request = models.ForeignKey(AccessRequest, on_delete=models.PROTECT, related_name="assignments")
    stage = models.PositiveSmallIntegerField()
    principal = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="stage_assignments"
    )
    reason = models.CharField(
        max_length=10, choices=AssignmentReason.choices, default=AssignmentReason.RULE
    )
    created_at = models.DateTimeField(default=timezone.now)

    history = HistoricalRecords(get_user=get_history_user)

    class Meta:
        ordering = ["request", "stage", "principal"]
        indexes = [models.Index(fields=["principal", "stage"], name="assignment_principal")]
        constraints = [
            models.UniqueConstraint(
                fields=["request", "stage", "principal"], name="one_assignment_per_stage"
            )
        ]

    def __str__(self) -> str:
        return f"{self.principal} may decide stage {self.stage} of request #{self.request_id}"


class DelegationQuerySet(models.QuerySet["Delegation"]):
    def in_force(self, at: Any) -> DelegationQuerySet:
        return self.filter(cancelled_at__isnull=True, starts_at__lte=at, ends_at__gt=at)


class Delegation(models.Model):
    """While it is in force, ``delegate`` may decide what is waiting for ``delegator``."""

    delegator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="delegations_given"
    )
    delegate = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="delegations_received"
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords(get_user=get_history_user)

    objects = DelegationQuerySet.as_manager()

    class Meta:
        ordering = ["-starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="delegation_ends_after_start"
            ),
            models.CheckConstraint(
                condition=~Q(delegate=models.F("delegator")), name="delegation_not_to_self"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.delegator} → {self.delegate}"
