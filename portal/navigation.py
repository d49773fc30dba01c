"""The main navigation: each entry says which people see it.

An entry shows when the person can use its page (see ``portal.capabilities``); the pages stay
reachable by address and explain an empty state. Features add their entry here when their pages
exist; nothing links to a page that is not built.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from portal.capabilities import Capabilities, for_request


@dataclass(frozen=True)
class NavItem:
    label: str
    url_name: str
    visible: Callable[[Capabilities], bool]
    prefix: str
    count: Callable[[Any, Capabilities], int] | None = None


def _waiting_for_me(user: Any, capabilities: Capabilities) -> int:
    from django.utils import timezone

    from accessreq.selectors import break_glass_to_review, inbox

    at = timezone.now()  # a badge: the app clock is close enough and saves a query per page
    return inbox(user=user, at=at).count() + break_glass_to_review(user=user, at=at).count()


def _reviews_pending(user: Any, capabilities: Capabilities) -> int:
    return capabilities.reviews_pending


NAV: tuple[NavItem, ...] = (
    NavItem("Home", "home", lambda c: True, "/"),
    NavItem("Catalog", "catalog", lambda c: True, "/catalog/"),
    NavItem("My requests", "my_requests", lambda c: c.requester, "/requests/"),
    NavItem("My access", "my_access", lambda c: c.holder, "/access/"),
    NavItem("Approvals", "approvals", lambda c: c.approver, "/approvals/", count=_waiting_for_me),
    NavItem("Reviews", "my_reviews", lambda c: c.reviewer, "/reviews/", count=_reviews_pending),
    NavItem("Break-glass", "break_glass", lambda c: c.on_call, "/break-glass/"),
    NavItem("Dashboard", "reports_dashboard", lambda c: c.reads_audit, "/reports/dashboard/"),
    NavItem("Campaigns", "campaigns", lambda c: c.reads_audit, "/campaigns/"),
    NavItem("Provisioning", "provisioning", lambda c: c.security_admin, "/provisioning/"),
    NavItem("Directory sync", "scim:tokens", lambda c: c.security_admin, "/scim/"),
    NavItem("Pipelines", "service_accounts", lambda c: c.pipelines, "/service-accounts/"),
    NavItem("Audit", "audit:search", lambda c: c.reads_audit, "/audit/"),
    NavItem("Reports", "reports", lambda c: c.reads_audit, "/reports/"),
    NavItem("Docs", "docs:index", lambda c: True, "/docs/"),
    NavItem("Admin", "admin:index", lambda c: c.staff, "/admin/"),
)


def _matches(item: NavItem, path: str) -> bool:
    return path == "/" if item.prefix == "/" else path.startswith(item.prefix)


def items_for(request: HttpRequest) -> list[dict[str, object]]:
    """The entries this person sees; the one whose prefix matches the page most closely is
    current (one at most: /reports/dashboard/ is the dashboard's page, not every report's)."""
    user = request.user
    capabilities = for_request(request)
    path = request.path
    visible = [item for item in NAV if item.visible(capabilities)]
    current = max(
        (item for item in visible if _matches(item, path)),
        key=lambda item: len(item.prefix),
        default=None,
    )
    result = []
    for item in visible:
        count = item.count(user, capabilities) if item.count else 0
        result.append(
            {
                "label": item.label,
                "url": reverse(item.url_name),
                "active": item is current,
                "count": count,
            }
        )
    return result
