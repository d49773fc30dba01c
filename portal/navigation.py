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


def _anyone(user: Any) -> bool:
    return True


NAV: tuple[NavItem, ...] = (
    NavItem("Home", "home", _anyone, "/"),
    NavItem("Catalog", "catalog", _anyone, "/catalog/"),
    NavItem("Audit", "audit:search", roles.can_read_audit, "/audit/"),
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
        result.append({"label": item.label, "url": reverse(item.url_name), "active": active})
    return result
