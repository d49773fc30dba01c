"""The audit event table. Rows are written only by ``audit.services.record`` and never change:
database triggers refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL)."""

from __future__ import annotations

from django.db import models


class AuditEvent(models.Model):
    """One thing that happened: who (and how authenticated), what, to what, from where, when."""

    class ActorKind(models.TextChoices):
        HUMAN = "human", "Human"
        SERVICE = "service", "Service"
        SYSTEM = "system", "System"
        ANONYMOUS = "anonymous", "Anonymous"

    occurred_at = models.DateTimeField(db_index=True)
    # A plain id, not a foreign key: deleting a user must never touch the ledger.
    actor_id = models.BigIntegerField(null=True, db_index=True)
    actor_name = models.CharField(max_length=254)
    actor_kind = models.CharField(max_length=10, choices=ActorKind.choices)
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=100, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=200, blank=True)
    data = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    session_hash = models.CharField(max_length=64, blank=True)
    mfa_method = models.CharField(max_length=20, blank=True)
    mfa_age_seconds = models.IntegerField(null=True, blank=True)
    code_version = models.CharField(max_length=64)
    deployment = models.CharField(max_length=64)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["target_type", "target_id"], name="audit_target_idx")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} by {self.actor_name}"
