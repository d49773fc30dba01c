"""Template tags of the docs pages."""

from __future__ import annotations

from datetime import date
from typing import Any

from django import template
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email
from django.utils import timezone

register = template.Library()


def _contact_link(contact: str) -> str:
    """A link for the liaison's contact: mailto for an address, the URL for a web page."""
    try:
        validate_email(contact)
    except ValidationError:
        pass
    else:
        return f"mailto:{contact}"
    try:
        URLValidator(schemes=["https", "http"])(contact)
    except ValidationError:
        return ""
    return contact


@register.inclusion_tag("docs/includes/liaison.html")
def security_liaison() -> dict[str, Any]:
    """Who to contact about security (settings SECURITY_LIAISON_NAME and _CONTACT)."""
    contact = str(settings.SECURITY_LIAISON_CONTACT).strip()
    return {
        "name": settings.SECURITY_LIAISON_NAME,
        "contact": contact,
        "href": _contact_link(contact),
    }


@register.filter
def relative_day(value: date | None) -> str:
    """A date relative to today in words: "today", "in 12 days", "about 3 months ago"."""
    if value is None:
        return ""
    days = (value - timezone.localdate()).days
    if days == 0:
        return "today"
    if days == 1:
        return "tomorrow"
    if days == -1:
        return "yesterday"
    size = abs(days)
    if size < 60:
        words = f"{size} days"
    elif size < 730:
        words = f"about {round(size / 30.44)} months"
    else:
        words = f"about {round(size / 365.25)} years"
    return f"in {words}" if days > 0 else f"{words} ago"
