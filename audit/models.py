"""The audit event table. Rows are written only by ``audit.services.record`` and never change:
database triggers refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL)."""

from __future__ import annotations

from django.db import models


class AuditEvent(models.Model):
    """One thing that happened: who (and how authenticated), what, to what, from where, when.

    Each event is a leaf of the ledger's Merkle tree and carries the previous event's hash, so any
    edit, deletion, insertion or reordering breaks the chain (see ``audit.canonical``).
    """

    class ActorKind(models.TextChoices):
        HUMAN = "human", "Human"
        SERVICE = "service", "Service"
        SYSTEM = "system", "System"
        ANONYMOUS = "anonymous", "Anonymous"

    sequence = models.BigIntegerField(unique=True, help_text="Gapless, from 1, in commit order.")
    prev_hash = models.CharField(max_length=64, help_text="Leaf hash of the previous event.")
    leaf_hash = models.CharField(max_length=64, help_text="SHA-256(0x00 || canonical event).")
    occurred_at = models.DateTimeField(db_index=True, help_text="Database time.")
    # A plain id, not a foreign key: deleting a user must never touch the ledger.
    actor_id = models.BigIntegerField(null=True, db_index=True)
    actor_name = models.CharField(max_length=254)
    actor_kind = models.CharField(max_length=10, choices=ActorKind.choices)
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=100, blank=True)
    # Room for a scope triple "action:system:environment" (at most 50 + 1 + 100 + 1 + 50).
    target_id = models.CharField(max_length=255, blank=True)
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
    pipeline = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["sequence"]
        indexes = [models.Index(fields=["target_type", "target_id"], name="audit_target_idx")]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.action} by {self.actor_name}"


class SigningKey(models.Model):
    """A published Ed25519 public key that has signed checkpoints; kept after rotation."""

    key_id = models.CharField(max_length=16, unique=True)
    public_key = models.CharField(max_length=64, help_text="Raw 32-byte public key, hex.")
    created_at = models.DateTimeField()
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"key {self.key_id}"


class Checkpoint(models.Model):
    """A signed tree head: the Merkle root over the first ``tree_size`` events, signed."""

    tree_size = models.BigIntegerField()
    root_hash = models.CharField(max_length=64)
    signed_at = models.DateTimeField()
    key_id = models.CharField(max_length=16)
    signature = models.CharField(max_length=128, help_text="Ed25519 signature, hex.")

    class Meta:
        ordering = ["tree_size", "id"]
        get_latest_by = "tree_size"

    def __str__(self) -> str:
        return f"checkpoint of {self.tree_size} events"
