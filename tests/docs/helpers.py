"""Helpers of the docs tests: runbook files in a temporary folder, and runbooks in the database."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from django.utils import timezone

from docs.models import Runbook

FRONT = """---
title: {title}
category: {category}
owner: {owner}
review_every_days: {days}
summary: {summary}
{extra}---
"""


def write_runbook(
    directory: Path,
    slug: str,
    *,
    title: str = "Requesting access",
    category: str = "Everyday access",
    owner: str = "sam@example.com",
    days: int = 180,
    summary: str = "How to ask for access.",
    body: str = "## Find it\n\nOpen the catalog.\n",
    extra: str = "",
) -> Path:
    path = directory / f"{slug}.md"
    text = FRONT.format(
        title=title, category=category, owner=owner, days=days, summary=summary, extra=extra
    )
    path.write_text(text + "\n" + body, encoding="utf-8")
    return path


def make_runbook(
    slug: str = "requesting-access",
    *,
    title: str = "Requesting access",
    category: str = "Everyday access",
    summary: str = "How to ask for access.",
    body: str = "## Find it\n\nOpen the catalog.\n",
    last_reviewed_at: date | None = None,
    review_every_days: int = 180,
    **extra: object,
) -> Runbook:
    """A runbook row for page tests (as if seeded)."""
    return Runbook.objects.create(
        slug=slug,
        title=title,
        category=category,
        summary=summary,
        body=body,
        last_reviewed_at=last_reviewed_at or timezone.localdate(),
        review_every_days=review_every_days,
        source_hash="0" * 64,
        **extra,
    )
