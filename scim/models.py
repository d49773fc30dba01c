"""SCIM 2.0 provisioning: the bearer tokens directories (Okta, Entra ID) use, and the links
between a directory's objects and Gatehouse's people and teams.

People and teams stay ``portal.models.User`` and ``portal.models.Team``; a SCIM resource's id is
the row's primary key. The link rows hold what only the directory knows (its ``externalId``, the
name parts, the work email, the department) and whether the directory deleted the object.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from portal.history import get_history_user


class ScimTokenQuerySet(models.QuerySet["ScimToken"]):
    def usable(self) -> ScimTokenQuerySet:
        return self.filter(revoked_at__isnull=True)


class ScimToken(models.Model):
    """The bearer credential of one directory connection, minted by a security admin. Only the
    SHA-256 of the secret is stored; the name says in the ledger which directory pushed a change."""

    name = models.CharField(max_length=100, unique=True)
    prefix = models.CharField(max_length=16)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    revoke_reason = models.CharField(max_length=200, blank=True)

    # last_used_at is written at most once a minute of use, by a conditional update.
    history = HistoricalRecords(get_user=get_history_user, excluded_fields=["last_used_at"])

    objects = ScimTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = "SCIM token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def source(self) -> str:
        """How lifecycle events name this connection: ``scim:<name>``."""
        return f"scim:{self.name}"


class ScimIdentity(models.Model):
    """What a directory knows about one person beyond Gatehouse's own fields. Made on the first
    SCIM write to the person (people who existed before SCIM are visible without one)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="scim_identity"
    )
    external_id = models.CharField(max_length=255, blank=True)
    given_name = models.CharField(max_length=150, blank=True)
    family_name = models.CharField(max_length=150, blank=True)
    work_email = models.EmailField(blank=True)
    department = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    created_by_token = models.ForeignKey(
        ScimToken, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    deleted_at = models.DateTimeField(
        null=True, blank=True, help_text="The directory deleted the person: hidden from SCIM."
    )

    history = HistoricalRecords(get_user=get_history_user)

    class Meta:
        verbose_name = "SCIM identity"
        verbose_name_plural = "SCIM identities"
        constraints = [
            models.UniqueConstraint(
                fields=["external_id"],
                condition=~models.Q(external_id=""),
                name="scim_identity_unique_external_id",
            )
        ]

    def __str__(self) -> str:
        return f"SCIM identity of user #{self.user_id}"


class ScimGroup(models.Model):
    """What a directory knows about one team: its ``externalId`` and whether it was deleted."""

    team = models.OneToOneField("portal.Team", on_delete=models.CASCADE, related_name="scim_group")
    external_id = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    deleted_at = models.DateTimeField(
        null=True, blank=True, help_text="The directory deleted the group: hidden from SCIM."
    )

    history = HistoricalRecords(get_user=get_history_user)

    class Meta:
        verbose_name = "SCIM group"
        constraints = [
            models.UniqueConstraint(
                fields=["external_id"],
                condition=~models.Q(external_id=""),
                name="scim_group_unique_external_id",
            )
        ]

    def __str__(self) -> str:
        return f"SCIM group of team #{self.team_id}"
