"""Pipelines: CI issuers Gatehouse trusts, the rules that map CI identities to service accounts,
and the API tokens service accounts use."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from portal.history import get_history_user


class ClaimFormat(models.TextChoices):
    GITHUB = "github", "GitHub Actions"
    GITLAB = "gitlab", "GitLab CI"


class TrustedIssuer(models.Model):
    """An OpenID Connect issuer of CI job identity tokens (GitHub Actions, GitLab CI) whose
    tokens Gatehouse exchanges, verified against the keys published at ``jwks_url``."""

    name = models.CharField(max_length=100, unique=True)
    issuer = models.URLField(
        max_length=300, unique=True, help_text="Exactly the token's iss claim."
    )
    audience = models.CharField(
        max_length=200, help_text="The aud claim the CI job must ask for (e.g. gatehouse)."
    )
    jwks_url = models.URLField(max_length=500, help_text="Where the issuer publishes its keys.")
    claim_format = models.CharField(max_length=10, choices=ClaimFormat.choices)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    history = HistoricalRecords(get_user=get_history_user)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TrustRuleQuerySet(models.QuerySet["TrustRule"]):
    def for_listing(self) -> TrustRuleQuerySet:
        return self.select_related("issuer", "service_account", "created_by")


class TrustRule(models.Model):
    """Jobs from ``issuer`` whose claims match every non-empty field here act as
    ``service_account``. ``ref`` and ``workflow`` may use shell-style wildcards
    (``refs/tags/v*``)."""

    issuer = models.ForeignKey(TrustedIssuer, on_delete=models.PROTECT, related_name="rules")
    service_account = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="trust_rules"
    )
    repository = models.CharField(
        max_length=200, help_text="owner/name on GitHub, group/project on GitLab; exact."
    )
    ref = models.CharField(max_length=200, blank=True, help_text="e.g. refs/heads/main")
    environment = models.CharField(max_length=100, blank=True)
    workflow = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    history = HistoricalRecords(get_user=get_history_user)

    objects = TrustRuleQuerySet.as_manager()

    class Meta:
        ordering = ["issuer__name", "repository", "ref", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "issuer",
                    "service_account",
                    "repository",
                    "ref",
                    "environment",
                    "workflow",
                ],
                name="trust_rule_unique",
                violation_error_message="This service account already has this rule.",
            )
        ]

    def __str__(self) -> str:
        parts = [self.repository, self.ref, self.environment, self.workflow]
        return f"{self.issuer}: {' · '.join(p for p in parts if p)} → {self.service_account}"


class TokenKind(models.TextChoices):
    EXCHANGED = "exchanged", "Exchanged from a CI identity"
    MINTED = "minted", "Minted by an owner"


class ApiTokenQuerySet(models.QuerySet["ApiToken"]):
    def usable(self) -> ApiTokenQuerySet:
        """Not revoked and not expired by the database clock."""
        from django.db.models.functions import Now

        return self.filter(revoked_at__isnull=True, expires_at__gt=Now())

    def for_listing(self) -> ApiTokenQuerySet:
        return self.select_related("service_account", "created_by", "revoked_by", "trust_rule")


class ApiToken(models.Model):
    """A bearer credential of one service account. Only the SHA-256 of the secret is stored; the
    prefix identifies it in lists and the ledger. ``scopes`` (``scope:system:environment``
    triples) limits what it may be used for; ``None`` means whatever the account holds."""

    service_account = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    kind = models.CharField(max_length=10, choices=TokenKind.choices)
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16, db_index=True)
    digest = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The owner who minted it; empty for exchanged tokens.",
    )
    trust_rule = models.ForeignKey(
        TrustRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="tokens"
    )
    ci_identity = models.JSONField(
        default=dict, blank=True, help_text="The verified CI claims an exchanged token came from."
    )
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    revoke_reason = models.CharField(max_length=200, blank=True)
    # Set when the service account's only owner left: the token still works (revoking it could
    # stop a production pipeline), but security admins and the page say someone must take over.
    flagged_at = models.DateTimeField(null=True, blank=True)
    flag_reason = models.CharField(max_length=200, blank=True)
    rotated_from = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="rotated_to"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    reminded_days_before = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="The shortest lead time (days) owners were reminded at."
    )

    # last_used_at is usage telemetry written on (at most) every minute of use: it stays out of
    # the history so the API's cheap conditional update doesn't bypass a tracked field.
    history = HistoricalRecords(get_user=get_history_user, excluded_fields=["last_used_at"])

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["kind", "revoked_at", "expires_at"], name="apitoken_kind_expiry")
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(expires_at__gt=models.F("created_at")),
                name="apitoken_expires_after_creation",
            ),
            models.CheckConstraint(
                condition=Q(revoked_at__isnull=True) | Q(revoked_by__isnull=False),
                name="apitoken_revoked_by_someone",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.service_account})"

    def state_at(self, now: Any) -> str:
        """``revoked``, ``expired`` or ``active`` at ``now`` (for pages; the API asks the DB)."""
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expires_at <= now else "active"
