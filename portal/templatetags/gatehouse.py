"""Template filters shared by every page."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django import template
from django.utils import timezone
from django.utils.timesince import timesince

register = template.Library()

_UNITS = (("day", 86400), ("hour", 3600), ("minute", 60))


@register.filter
def duration(value: timedelta | None) -> str:
    """``timedelta(days=1, hours=2)`` -> ``1 day 2 hours``; the two largest units only."""
    if value is None:
        return ""
    seconds = int(value.total_seconds())
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    parts = []
    for name, size in _UNITS:
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount} {name}{'s' if amount != 1 else ''}")
    return " ".join(parts[:2])


@register.filter
def ago(value: datetime | None, now: datetime | None = None) -> str:
    """How long ago, as people say it: ``just now`` under a minute, else ``5 minutes ago``."""
    if value is None:
        return ""
    now = now or timezone.now()
    if now - value < timedelta(minutes=1):
        return "just now"
    return f"{timesince(value, now)} ago"


@register.filter
def catalog_summary(entitlement: Any) -> str:
    """An entitlement's description without what the table's columns already say.

    Descriptions often open with "<name> on <system> in <environment>: "; the catalog shows name,
    system and environment in their own columns, so only the rest is worth the line.
    """
    text = (entitlement.description or "").strip()
    lead = f"{entitlement.name} on {entitlement.system.name} in {entitlement.environment.name}"
    if text.lower().startswith(lead.lower()):
        text = text[len(lead) :].lstrip(" :-—,.")
        text = text[:1].upper() + text[1:]
    return text
