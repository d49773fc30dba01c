"""Reusable reads for the access pages."""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from accessreq.models import Entitlement, EntitlementQuerySet


def catalog_search(*, user: Any, text: str = "", tier: str = "") -> EntitlementQuerySet:
    """Entitlements the user may see, matching ``text`` on system, environment, name or scope."""
    qs = Entitlement.objects.visible_to(user).for_listing()
    for word in text.split()[:8]:
        qs = qs.filter(
            Q(name__icontains=word)
            | Q(system__name__icontains=word)
            | Q(system__slug__icontains=word)
            | Q(environment__name__icontains=word)
            | Q(scopes__slug__icontains=word)
            | Q(description__icontains=word)
        )
    if tier:
        qs = qs.filter(environment__risk_tier=tier)
    return qs.distinct()
