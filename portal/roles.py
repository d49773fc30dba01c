"""The two built-in groups, what they may do in the admin, and the checks that use them."""

from __future__ import annotations

from typing import Any

SECURITY_ADMIN = "security-admin"
AUDITOR = "auditor"
# Members may take emergency-capable entitlements at once with break-glass.
ON_CALL = "on-call"
GROUPS = (SECURITY_ADMIN, AUDITOR, ON_CALL)

# Models security admins manage in the admin (full rights) and may only look at.
_MANAGED = {
    "portal": ["user", "team"],
    "accessreq": [
        "scope",
        "system",
        "environment",
        "entitlement",
        "approvalpolicy",
        "policystage",
        "conflictrule",
        "connector",
        "campaigntemplate",
    ],
    "docs": ["runbook"],
    "django_celery_beat": [
        "periodictask",
        "intervalschedule",
        "crontabschedule",
        "solarschedule",
        "clockedschedule",
    ],
}
_VIEW_ONLY = {
    "portal": ["totpdevice"],
    "audit": ["auditevent", "checkpoint", "signingkey"],
    "accessreq": [
        "accessrequest",
        "approval",
        "grant",
        "delegation",
        "provisioningtask",
        "stageassignment",
        "notification",
        "campaign",
        "reviewitem",
        "trustedissuer",
        "trustrule",
        "apitoken",
    ],
}
# Auditors are read-only everywhere they look.
_AUDITOR_VIEW = {
    "portal": ["user", "team"],
    "accessreq": [
        "scope",
        "system",
        "environment",
        "entitlement",
        "approvalpolicy",
        "policystage",
        "conflictrule",
        "accessrequest",
        "approval",
        "grant",
        "delegation",
        "campaigntemplate",
        "campaign",
        "reviewitem",
        "trustedissuer",
        "trustrule",
        "apitoken",
    ],
    "audit": ["auditevent", "checkpoint", "signingkey"],
    "docs": ["runbook"],
}


def _permissions(spec: dict[str, list[str]], actions: tuple[str, ...]) -> Any:
    from django.contrib.auth.models import Permission
    from django.db.models import Q

    query = Q(pk__in=[])
    for app_label, models in spec.items():
        codenames = [f"{action}_{model}" for model in models for action in actions]
        query |= Q(content_type__app_label=app_label, codename__in=codenames)
    return Permission.objects.filter(query)


def ensure_groups() -> None:
    """Create the groups and (re)grant their permissions; safe to run any number of times."""
    from django.contrib.auth.models import Group

    security, _ = Group.objects.get_or_create(name=SECURITY_ADMIN)
    security.permissions.add(
        *_permissions(_MANAGED, ("add", "change", "delete", "view")),
        *_permissions(_VIEW_ONLY, ("view",)),
    )
    auditor, _ = Group.objects.get_or_create(name=AUDITOR)
    auditor.permissions.add(*_permissions(_AUDITOR_VIEW, ("view",)))
    Group.objects.get_or_create(name=ON_CALL)


def is_security_admin(user: Any) -> bool:
    return bool(user.is_authenticated and (user.is_superuser or user.in_group(SECURITY_ADMIN)))


def is_auditor(user: Any) -> bool:
    return bool(user.is_authenticated and user.in_group(AUDITOR))


def is_on_call(user: Any) -> bool:
    return bool(user.is_authenticated and user.in_group(ON_CALL))


def can_read_audit(user: Any) -> bool:
    """Auditors (read-only) and security admins may search and export the ledger."""
    return is_auditor(user) or is_security_admin(user)
