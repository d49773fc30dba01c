"""Report exports too big to build while the browser waits: built by a Celery worker, with
progress, and kept for a while for the person who asked."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class ExportState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Being built"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"
    EXPIRED = "expired", "Deleted after its keeping time"


class ReportExport(models.Model):
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="report_exports"
    )
    report = models.CharField(max_length=40)
    title = models.CharField(max_length=100)
    format = models.CharField(max_length=5)
    # The form's raw input, read again by the worker with ``created_at`` as "now".
    query = models.JSONField(default=dict)
    parameters = models.JSONField(default=dict)
    state = models.CharField(max_length=8, choices=ExportState.choices, default=ExportState.QUEUED)
    rows_total = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    # Moved on by the worker as it writes; a stale one means the worker died.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    filename = models.CharField(max_length=200, blank=True)
    # Relative to the export folder; never shown.
    path = models.CharField(max_length=200, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["state", "created_at"], name="reportexport_state")]

    def __str__(self) -> str:
        return f"{self.title} ({self.format.upper()}) for {self.requested_by}"

    @property
    def percent(self) -> int:
        if self.state == ExportState.READY:
            return 100
        if not self.rows_total:
            return 0
        return min(99, self.rows_done * 100 // self.rows_total)

    @property
    def parameter_text(self) -> str:
        """The parameters given, in words; the report's defaults when none were."""
        parts = []
        for key, value in sorted(self.parameters.items()):
            if value in (None, "", [], {}):
                continue
            shown = value.get("name", value) if isinstance(value, dict) else value
            parts.append(f"{key.replace('_', ' ')}: {shown}")
        return "; ".join(parts) or "none given: the report's defaults"

    @property
    def in_progress(self) -> bool:
        return self.state in (ExportState.QUEUED, ExportState.RUNNING)
