"""Recertification: campaign templates, the campaigns launched from them, and review items."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from accessreq.campaign_states import CampaignState, ReviewDecision
from accessreq.models.catalog import Entitlement, Environment, System
from accessreq.models.grants import Grant
from portal.history import get_history_user


class Cadence(models.TextChoices):
    MONTHLY = "monthly", "Monthly"
    QUARTERLY = "quarterly", "Quarterly"
    SEMIANNUAL = "semiannual", "Every six months"
    ANNUAL = "annual", "Yearly"


class ReviewerRule(models.TextChoices):
    MANAGER = "manager", "Holder's manager"
    ENTITLEMENT_OWNER = "entitlement_owner", "Entitlement owner"
    SYSTEM_OWNER = "system_owner", "System owner"


class DeadlineAction(models.TextChoices):
    REVOKE = "revoke", "Revoke what was not reviewed"
    FLAG = "flag", "Keep it and flag it"


def default_reminders() -> list[int]:
    return [7, 3, 1]


class CampaignTemplate(models.Model):
    """What a recertification campaign reviews, who reviews it, how often, and what happens to
    items nobody reviewed. Empty scope filters mean "all"."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    environments = models.ManyToManyField(Environment, blank=True, related_name="+")
    tiers = models.JSONField(
        default=list, blank=True, help_text='Risk tiers in scope, e.g. ["high", "critical"].'
    )
    systems = models.ManyToManyField(System, blank=True, related_name="+")
    entitlements = models.ManyToManyField(Entitlement, blank=True, related_name="+")
    include_service_accounts = models.BooleanField(default=False)
    reviewer_rule = models.CharField(
        max_length=20, choices=ReviewerRule.choices, default=ReviewerRule.MANAGER
    )
    fallback_reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Reviews items whose reviewer is missing, inactive, or the holder.",
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Runs the campaigns and gets the closing summary.",
    )
    cadence = models.CharField(max_length=12, choices=Cadence.choices, default=Cadence.QUARTERLY)
    duration_days = models.PositiveSmallIntegerField(
        default=14, validators=[MinValueValidator(1), MaxValueValidator(90)]
    )
    reminder_days = models.JSONField(
        default=default_reminders,
        blank=True,
        help_text="Days before the deadline to remind reviewers; they are also reminded on the "
        "day and, if set below, daily after it.",
    )
    remind_daily_after = models.BooleanField(default=True)
    escalate_after_days = models.PositiveSmallIntegerField(
        default=2, help_text="Days after the deadline before the reviewer's manager is told."
    )
    grace_days = models.PositiveSmallIntegerField(
        default=3,
        validators=[MaxValueValidator(30)],
        help_text="Days after the deadline during which late decisions are still taken (with "
        "daily reminders and escalation) before the deadline action is applied. 0: at once.",
    )
    deadline_action = models.CharField(
        max_length=10, choices=DeadlineAction.choices, default=DeadlineAction.REVOKE
    )
    critical_per_item = models.BooleanField(
        default=True, help_text="Critical-tier items can't be certified in bulk."
    )
    is_active = models.BooleanField(default=True)
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )

    history = HistoricalRecords(
        get_user=get_history_user, m2m_fields=[environments, systems, entitlements]
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class CampaignQuerySet(models.QuerySet["Campaign"]):
    def for_listing(self) -> CampaignQuerySet:
        return self.select_related("template", "launched_by")


class Campaign(models.Model):
    """One run of a template for one period; ``(template, period)`` is unique, so a double
    launch finds the campaign that exists. ``launch_cursor`` lets an interrupted launch resume."""

    template = models.ForeignKey(
        CampaignTemplate, on_delete=models.PROTECT, related_name="campaigns"
    )
    period = models.CharField(max_length=40)
    state = models.CharField(
        max_length=10, choices=CampaignState.choices, default=CampaignState.SCHEDULED
    )
    created_at = models.DateTimeField(default=timezone.now)
    launched_at = models.DateTimeField(null=True, blank=True)
    launched_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    deadline = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    launch_cursor = models.BigIntegerField(default=0)
    summary = models.JSONField(default=dict, blank=True)

    history = HistoricalRecords(get_user=get_history_user)

    objects = CampaignQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["template", "period"], name="one_campaign_per_period")
        ]

    def __str__(self) -> str:
        return f"{self.template.name} {self.period}"


class ReviewItemQuerySet(models.QuerySet["ReviewItem"]):
    def for_reviewer(self, user: Any) -> ReviewItemQuerySet:
        """Items a person reviews: only their own (others' items are 404)."""
        if not getattr(user, "is_authenticated", False):
            return self.none()
        return self.filter(reviewer=user)


class ReviewItem(models.Model):
    """One grant to confirm or revoke, one reviewer, one decision. ``snapshot`` freezes what the
    reviewer saw at launch, so later changes don't rewrite what was reviewed."""

    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="items")
    grant = models.ForeignKey(Grant, on_delete=models.PROTECT, related_name="review_items")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="review_items"
    )
    reviewer_reason = models.CharField(max_length=20, default="rule")
    snapshot = models.JSONField(default=dict)
    # Copied from the snapshot for the reviewer page's filters.
    tier = models.CharField(max_length=10)
    system = models.ForeignKey(System, on_delete=models.PROTECT, related_name="+")
    team_name = models.CharField(max_length=100, blank=True)
    decision = models.CharField(
        max_length=10, choices=ReviewDecision.choices, default=ReviewDecision.PENDING
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    comment = models.TextField(blank=True)
    mfa_method = models.CharField(max_length=20, blank=True)
    mfa_age_seconds = models.PositiveIntegerField(null=True, blank=True)
    reassigned_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    deadline_action = models.CharField(max_length=10, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    history = HistoricalRecords(get_user=get_history_user)

    objects = ReviewItemQuerySet.as_manager()

    class Meta:
        ordering = ["campaign", "pk"]
        indexes = [
            models.Index(fields=["reviewer", "decision"], name="review_item_reviewer"),
            models.Index(fields=["campaign", "decision"], name="review_item_campaign"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "grant"],
                condition=~Q(decision=ReviewDecision.REASSIGNED),
                name="one_open_item_per_grant",
            ),
        ]

    def __str__(self) -> str:
        return f"Review of grant #{self.grant_id} by {self.reviewer}"
