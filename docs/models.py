"""Runbooks: living documentation with an owner and a review date, kept as history-tracked data."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from portal.history import get_history_user

# The longest review interval a runbook may set: ten years is "never", and never is not allowed.
LONGEST_REVIEW_INTERVAL = 3650


def default_review_days() -> int:
    return int(settings.RUNBOOK_REVIEW_DAYS)


class RunbookQuerySet(models.QuerySet["Runbook"]):
    def visible_to(self, user: Any) -> RunbookQuerySet:
        """Every signed-in person may read every runbook."""
        if not getattr(user, "is_authenticated", False):
            return self.none()
        return self.all()

    def editable_by(self, user: Any) -> RunbookQuerySet:
        """Only security admins edit runbooks; for anyone else this is empty (pages answer 404)."""
        from portal.roles import is_security_admin

        return self.all() if is_security_admin(user) else self.none()


class Runbook(models.Model):
    """A how-to for people using Gatehouse, written in Markdown, owned by someone who reviews it
    every ``review_every_days``. Seeded from ``docs/runbooks/<slug>.md``; a portal edit wins over
    the file from then on (``edited_in_portal``)."""

    slug = models.SlugField(max_length=100, unique=True)
    title = models.CharField(max_length=200)
    category = models.CharField(max_length=100)
    summary = models.CharField(max_length=300, blank=True)
    body = models.TextField(blank=True, help_text="Markdown.")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_runbooks",
        help_text="Reminded by email when the runbook is due for review.",
    )
    owner_email = models.EmailField(
        blank=True, help_text="Shown as the owner; the owner's own address when they have one."
    )
    review_every_days = models.PositiveIntegerField(
        default=default_review_days,
        validators=[MinValueValidator(1), MaxValueValidator(LONGEST_REVIEW_INTERVAL)],
    )
    last_reviewed_at = models.DateField(null=True, blank=True)
    # sha256 of the file content this runbook was last seeded from ("" when made in the portal).
    source_hash = models.CharField(max_length=64, blank=True)
    edited_in_portal = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    history = HistoricalRecords(get_user=get_history_user)

    objects = RunbookQuerySet.as_manager()

    class Meta:
        ordering = ["category", "title"]

    def __str__(self) -> str:
        return self.title

    @property
    def next_review_due(self) -> date | None:
        """The date the next review is due; None when it was never reviewed (due now)."""
        if self.last_reviewed_at is None:
            return None
        return self.last_reviewed_at + timedelta(days=self.review_every_days)

    @property
    def is_overdue(self) -> bool:
        """Due for review: the due date has come (or it was never reviewed)."""
        due = self.next_review_due
        return due is None or due <= timezone.localdate()

    @property
    def owner_label(self) -> str:
        if self.owner is not None:
            return str(self.owner.display_name or self.owner.email)
        return self.owner_email
