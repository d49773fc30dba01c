"""The two built-in groups and the checks that use them."""

from __future__ import annotations

from typing import Any

SECURITY_ADMIN = "security-admin"
AUDITOR = "auditor"
GROUPS = (SECURITY_ADMIN, AUDITOR)


def ensure_groups() -> None:
    from django.contrib.auth.models import Group

    for name in GROUPS:
        Group.objects.get_or_create(name=name)


def is_security_admin(user: Any) -> bool:
    return bool(user.is_authenticated and (user.is_superuser or user.in_group(SECURITY_ADMIN)))


def is_auditor(user: Any) -> bool:
    return bool(user.is_authenticated and user.in_group(AUDITOR))
