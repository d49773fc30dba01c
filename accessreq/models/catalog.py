"""The catalog: systems, environments, scopes and the entitlements people request."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from simple_history.models import HistoricalRecords

from portal.history import get_history_user


class RiskTier(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


TIER_ORDER = {RiskTier.LOW: 0, RiskTier.MEDIUM: 1, RiskTier.HIGH: 2, RiskTier.CRITICAL: 3}


class Scope(models.Model):
    """An action an entitlement allows on its system, such as ``deploy`` or ``read-secrets``."""

    slug = models.SlugField(max_length=50, unique=True)
    description = models.CharField(max_length=200, blank=True)

    history = HistoricalRecords(get_user=get_history_user)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class System(models.Model):
    """A service or tool that access is granted to, such as ``payments-service``."""

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    owners = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="owned_systems"
    )
    criticality = models.CharField(max_length=10, choices=RiskTier.choices, default=RiskTier.MEDIUM)

    history = HistoricalRecords(get_user=get_history_user, m2m_fields=[owners])

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Environment(models.Model):
    """A deployment stage (dev, staging, prod) with the risk tier that sets its approval policy."""

    name = models.CharField(max_length=50, unique=True)
    slug = models.SlugField(max_length=50, unique=True)
    risk_tier = models.CharField(max_length=10, choices=RiskTier.choices, default=RiskTier.LOW)
    max_duration = models.DurationField(
        null=True,
        blank=True,
        validators=[MinValueValidator(timedelta(minutes=15))],
        help_text="Longest grant any entitlement here may have; empty means no extra limit.",
    )
    requires_deployment_approval = models.BooleanField(
        default=False,
        help_text="Pipelines may deploy here only with an approved deployment for the commit.",
    )
    required_checks = models.JSONField(
        null=True,
        blank=True,
        help_text='Checks a deployment must report as passed, e.g. ["tests", "scan"]; [] for none; '
        "empty for the tier default (tests and scan for high and critical tiers, none otherwise).",
    )

    history = HistoricalRecords(get_user=get_history_user)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def deployment_checks(self) -> list[str]:
        """The checks a deployment approval here must carry as passed."""
        if self.required_checks is not None:
            return [str(name) for name in self.required_checks]
        if self.risk_tier in (RiskTier.HIGH, RiskTier.CRITICAL):
            return ["tests", "scan"]
        return []


class EntitlementQuerySet(models.QuerySet["Entitlement"]):
    def visible_to(self, user: Any) -> EntitlementQuerySet:
        """The catalog is readable by every verified person; inactive entries are hidden."""
        if not getattr(user, "is_authenticated", False):
            return self.none()
        return self.filter(is_active=True)

    def for_listing(self) -> EntitlementQuerySet:
        return self.select_related("system", "environment").prefetch_related("scopes", "owners")


class Entitlement(models.Model):
    """A named set of scopes on one system in one environment, requested and granted as a unit."""

    system = models.ForeignKey(System, on_delete=models.PROTECT, related_name="entitlements")
    environment = models.ForeignKey(
        Environment, on_delete=models.PROTECT, related_name="entitlements"
    )
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=100)
    description = models.TextField(blank=True)
    scopes = models.ManyToManyField(Scope, related_name="entitlements")
    owners = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="owned_entitlements"
    )
    max_duration = models.DurationField(
        default=timedelta(days=7),
        validators=[MinValueValidator(timedelta(minutes=15))],
        help_text="Longest time one grant may last, e.g. 8:00:00 or 7 days.",
    )
    ticket_required = models.BooleanField(default=False)
    policy = models.ForeignKey(
        "accessreq.ApprovalPolicy",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="entitlements",
        help_text="Overrides the policy of the environment's risk tier.",
    )
    emergency_capable = models.BooleanField(
        default=False, help_text="On-call people may take this at once with break-glass."
    )
    connector = models.ForeignKey(
        "accessreq.Connector",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="entitlements",
        help_text="Carries out grants and revocations; empty means nothing to provision.",
    )
    is_active = models.BooleanField(
        default=True, help_text="Inactive entitlements can't be requested."
    )

    history = HistoricalRecords(get_user=get_history_user, m2m_fields=[scopes, owners])

    objects = EntitlementQuerySet.as_manager()

    class Meta:
        ordering = ["system__name", "environment__name", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["system", "environment", "slug"], name="unique_entitlement_per_env"
            )
        ]

    def __str__(self) -> str:
        return f"{self.system.name} / {self.environment.name} / {self.name}"

    @property
    def risk_tier(self) -> str:
        return self.environment.risk_tier

    @property
    def longest_grant(self) -> timedelta:
        """The entitlement's own limit, lowered by its environment's limit if that is shorter."""
        limits = [self.max_duration]
        if self.environment.max_duration:
            limits.append(self.environment.max_duration)
        return min(limits)
