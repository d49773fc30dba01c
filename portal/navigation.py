"""The main navigation: each entry says which people see it.

Features add their entry here when their pages exist; nothing links to a page that is not built.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from portal import roles


@dataclass(frozen=True)
class NavItem:
    label: str
    url_name: str
    visible: Callable[[Any], bool]
    prefix: str
    count: Callable[[Any], int] | None = None


def _anyone(user: Any) -> bool:
    return True


def _waiting_for_me(user: Any) -> int:
    from django.utils import timezone

    from accessreq.selectors import break_glass_to_review, inbox

    at = timezone.now()  # a badge: the app clock is close enough and saves a query per page
    return inbox(user=user, at=at).count() + break_glass_to_review(user=user, at=at).count()


def _reviews_pending(user: Any) -> int:
    from accessreq.campaign_states import CampaignState, ReviewDecision
    from accessreq.models import ReviewItem

    return ReviewItem.objects.filter(
        reviewer=user, decision=ReviewDecision.PENDING, campaign__state=CampaignState.OPEN
    ).count()


NAV: tuple[NavItem, ...] = (
    NavItem("Home", "home", _anyone, "/"),
    NavItem("Catalog", "catalog", _anyone, "/catalog/"),
    NavItem("My requests", "my_requests", _anyone, "/requests/"),
    NavItem("My access", "my_access", _anyone, "/access/"),
    NavItem("Approvals", "approvals", _anyone, "/approvals/", count=_waiting_for_me),
    NavItem("Reviews", "my_reviews", _anyone, "/reviews/", count=_reviews_pending),
    NavItem("Break-glass", "break_glass", roles.is_on_call, "/break-glass/"),
    NavItem("Campaigns", "campaigns", roles.can_read_audit, "/campaigns/"),
    NavItem("Provisioning", "provisioning", roles.is_security_admin, "/provisioning/"),
    # For everyone: knowing who owns a service account would cost a query on every page.
    NavItem("Pipelines", "service_accounts", _anyone, "/service-accounts/"),
    NavItem("Audit", "audit:search", roles.can_read_audit, "/audit/"),
    NavItem("Docs", "docs:index", _anyone, "/docs/"),
    NavItem(
        "Admin",
        "admin:index",
        lambda u: bool(u.is_staff),
        "/admin/",
    ),
)


def items_for(request: HttpRequest) -> list[dict[str, object]]:
    user = request.user
    path = request.path
    result = []
    for item in NAV:
        if not item.visible(user):
            continue
        active = path == "/" if item.prefix == "/" else path.startswith(item.prefix)
        count = item.count(user) if item.count else 0
        result.append(
            {"label": item.label, "url": reverse(item.url_name), "active": active, "count": count}
        )
    return result
