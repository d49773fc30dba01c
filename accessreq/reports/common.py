"""Small pieces every report shares: how people, entitlements and times are written, and the
catalog filters applied to a queryset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Q, QuerySet

# The ``values()`` lookups ``entitlement_text`` and ``tier_text`` read, from a row's model.
ENTITLEMENT_NAME_FIELDS = (
    "entitlement__system__name",
    "entitlement__environment__name",
    "entitlement__name",
)
ENTITLEMENT_FIELDS = (*ENTITLEMENT_NAME_FIELDS, "entitlement__environment__risk_tier")


def entitlement_text(row: dict[str, Any]) -> str:
    """``payments-service / prod / deploy`` from a row with ``ENTITLEMENT_NAME_FIELDS``."""
    return " / ".join(row[name] for name in ENTITLEMENT_NAME_FIELDS)


def tier_text(row: dict[str, Any]) -> str:
    from accessreq.models import RiskTier

    return str(RiskTier(row["entitlement__environment__risk_tier"]).label)


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


def named(name: str | None, email: str | None) -> str:
    """``person`` for a row's ``..._display_name`` and ``..._email`` values."""
    if not email:
        return ""
    return f"{name} <{email}>" if name else email


APPROVAL_FIELDS = (
    "request_id",
    "stage",
    "approver_id",
    "approver__display_name",
    "approver__email",
    "on_behalf_of__display_name",
    "on_behalf_of__email",
    "decision",
    "decided_at",
    "mfa_method",
    "mfa_age_seconds",
)


def approvals_by_request(request_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The approvals of these requests, each request's in stage and time order (one query)."""
    from accessreq.models import Approval

    found: dict[int, list[dict[str, Any]]] = {pk: [] for pk in request_ids}
    rows = (
        Approval.objects.filter(request_id__in=request_ids)
        .order_by("request_id", "stage", "decided_at", "pk")
        .values(*APPROVAL_FIELDS)
    )
    for row in rows:
        found[row["request_id"]].append(row)
    return found


def approvers(approvals: list[dict[str, Any]]) -> str:
    """``Stage 1: Ada <ada@…> approved 2026-03-01 10:00 UTC (totp, MFA 40s old)``, one per line."""
    from accessreq.models import Decision

    lines = []
    for approval in approvals:
        who = named(approval["approver__display_name"], approval["approver__email"])
        if approval["on_behalf_of__email"]:
            who += " for " + named(
                approval["on_behalf_of__display_name"], approval["on_behalf_of__email"]
            )
        mfa = ""
        if approval["mfa_method"]:
            age = approval["mfa_age_seconds"]
            age_text = f", MFA {duration(timedelta(seconds=age))} old" if age is not None else ""
            mfa = f" ({approval['mfa_method']}{age_text})"
        decision = str(Decision(approval["decision"]).label).lower()
        lines.append(
            f"Stage {approval['stage']}: {who} {decision} {utc(approval['decided_at'])}{mfa}"
        )
    return "\n".join(lines)
