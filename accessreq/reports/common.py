"""Small pieces every report shares: how people, entitlements and times are written, and the
catalog filters applied to a queryset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Q, QuerySet


def person(user: Any) -> str:
    if user is None:
        return ""
    return f"{user.display_name} <{user.email}>" if user.display_name else user.email


def entitlement(value: Any) -> str:
    return f"{value.system.name} / {value.environment.name} / {value.name}"


def utc(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else ""


def duration(value: timedelta | None) -> str:
    """``3d 4h``, ``2h 05m``, ``42s``: short enough for a table column."""
    if value is None:
        return ""
    seconds = int(value.total_seconds())
    if seconds < 0:
        return "-" + duration(-value)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def catalog_filters(
    queryset: QuerySet[Any], params: dict[str, Any], *, entitlement: str, person: str
) -> QuerySet[Any]:
    """Narrow ``queryset`` by the form's system, environment, tier, team and person, where
    ``entitlement`` and ``person`` are the lookups from the queryset's model to them."""
    if params.get("system"):
        queryset = queryset.filter(**{f"{entitlement}__system": params["system"]})
    if params.get("environment"):
        queryset = queryset.filter(**{f"{entitlement}__environment": params["environment"]})
    if params.get("tier"):
        queryset = queryset.filter(**{f"{entitlement}__environment__risk_tier": params["tier"]})
    if params.get("team"):
        queryset = queryset.filter(**{f"{person}__team": params["team"]})
    if text := (params.get("person") or "").strip():
        queryset = queryset.filter(
            Q(**{f"{person}__display_name__icontains": text})
            | Q(**{f"{person}__email__icontains": text})
        )
    return queryset


def catalog_facts(params: dict[str, Any]) -> list[tuple[str, str]]:
    facts = []
    for key, label in (
        ("system", "System"),
        ("environment", "Environment"),
        ("tier", "Risk tier"),
        ("team", "Team"),
        ("person", "Person"),
    ):
        if params.get(key):
            facts.append((label, str(params[key])))
    return facts


def approvers(access_request: Any) -> str:
    """``Stage 1: Ada <ada@…> approved 2026-03-01 10:00 UTC (totp, MFA 40s old)``, one per line,
    from the request's prefetched approvals."""
    lines = []
    for approval in access_request.approvals.all():
        who = person(approval.approver)
        if approval.on_behalf_of_id:
            who += f" for {person(approval.on_behalf_of)}"
        mfa = ""
        if approval.mfa_method:
            age = (
                f", MFA {duration(timedelta(seconds=approval.mfa_age_seconds))} old"
                if approval.mfa_age_seconds is not None
                else ""
            )
            mfa = f" ({approval.mfa_method}{age})"
        lines.append(
            f"Stage {approval.stage}: {who} {approval.get_decision_display().lower()} "
            f"{utc(approval.decided_at)}{mfa}"
        )
    return "\n".join(lines)
