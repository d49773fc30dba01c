"""Approval policies (stages, quorum, step-up) and separation-of-duties conflict rules."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from simple_history.models import HistoricalRecords

from accessreq.models.catalog import Entitlement, RiskTier
from portal.history import get_history_user
from portal.models import Team


class ApproverRule(models.TextChoices):
    """Who may decide a stage, relative to the request."""

    MANAGER = "manager", "Beneficiary's manager"
    ENTITLEMENT_OWNER = "entitlement_owner", "Entitlement owner"
    SYSTEM_OWNER = "system_owner", "System owner"
    OWNER_OR_MANAGER = "owner_or_manager", "Entitlement owner or manager"
    SECURITY_ADMIN = "security_admin", "Security admin"


class ApprovalPolicy(models.Model):
    """Who must approve a request: ordered stages, each with a quorum and optional step-up MFA.

    A policy with a tier is the default for environments of that tier; a policy without one is
    attached to single entitlements as an override.
    """

    name = models.CharField(max_length=100, unique=True)
    tier = models.CharField(
        max_length=10,
        choices=RiskTier.choices,
        null=True,
        blank=True,
        unique=True,
        help_text="Applies to every environment of this tier unless an entitlement overrides it.",
    )
    description = models.TextField(blank=True)

    history = HistoricalRecords(get_user=get_history_user)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "approval policies"

    def __str__(self) -> str:
        return self.name


class PolicyStage(models.Model):
    """One stage of a policy: ``quorum`` different people named by ``approver_rule`` approve."""

    policy = models.ForeignKey(ApprovalPolicy, on_delete=models.CASCADE, related_name="stages")
    position = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(5)],
        help_text="Stages are decided in order, starting at 1.",
    )
    approver_rule = models.CharField(max_length=20, choices=ApproverRule.choices)
    quorum = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(10)],
        help_text="How many different people must approve this stage.",
    )
    step_up = models.BooleanField(
        default=False, help_text="Approvers must have verified a code in the last 5 minutes."
    )

    history = HistoricalRecords(get_user=get_history_user)

    class Meta:
        ordering = ["policy", "position"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "position"], name="unique_stage_position"),
            models.CheckConstraint(condition=models.Q(quorum__gte=1), name="stage_quorum_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.position}. {self.get_approver_rule_display()} ×{self.quorum}"


class ConflictRule(models.Model):
    """Separation of duties: nobody may hold both entitlements at the same time."""

    first = models.ForeignKey(Entitlement, on_delete=models.CASCADE, related_name="+")
    second = models.ForeignKey(Entitlement, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(
        max_length=200,
        help_text="Shown to the requester, e.g. 'deployers may not approve releases'.",
    )

    history = HistoricalRecords(get_user=get_history_user)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["first", "second"], name="unique_conflict_pair"),
            models.CheckConstraint(
                condition=~models.Q(first=models.F("second")), name="conflict_needs_two"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.first} ⟂ {self.second}"


class BirthrightAccess(models.Model):
    """Access every member of a team gets on joining it (or moving into it), granted by the
    system actor without an approval stage. Off unless a security admin names some: a new
    person gets nothing by default."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="birthright_access")
    entitlement = models.ForeignKey(
        Entitlement, on_delete=models.PROTECT, related_name="birthright_for"
    )
    duration = models.DurationField(
        help_text="How long each grant lasts (at most the entitlement's longest grant); after "
        "it the person requests an extension like anyone else."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords(get_user=get_history_user)

    class Meta:
        ordering = ["team", "entitlement"]
        verbose_name = "birthright access"
        verbose_name_plural = "birthright access"
        constraints = [
            models.UniqueConstraint(
                fields=["team", "entitlement"], name="one_birthright_per_team_entitlement"
            )
        ]

    def __str__(self) -> str:
        return f"{self.entitlement} for every member of {self.team}"
