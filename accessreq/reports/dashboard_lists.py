"""The lists behind the dashboard's numbers: the requests, grants or ledger events one number
counts, chosen by the same ``*_q`` conditions as its count (``accessreq.reports.dashboard``),
with the same list in the admin for those who may open it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.db.models import DurationField, ExpressionWrapper, F, Q, QuerySet
from django.urls import reverse

from accessreq.models import AccessRequest, Grant, RequestKind, RiskTier
from accessreq.reports.dashboard import (
    APPROVED_STATES,
    BUCKETS_BY_KEY,
    DEFAULT_DAYS,
    EXPIRING_DAYS,
    POLICY_VIOLATIONS,
    AgeBucket,
    approved_q,
    break_glass_q,
    expiring_q,
    held_q,
    ledger_q,
    month_start,
    pending_q,
)
from accessreq.states import RequestState
from audit.models import AuditEvent


@dataclass(frozen=True)
class DrillDown:
    """The rows behind one number: requests or grants, with the same conditions as its count,
    and the same list in the admin (for those who may open it)."""

    kind: str
    title: str
    lead: str
    subject: str  # "requests", "grants" or "events"
    rows: QuerySet[Any]
    admin_model: str  # app_label.model_name
    admin_lookups: dict[str, str]

    @property
    def admin_permission(self) -> str:
        app_label, model = self.admin_model.split(".")
        return f"{app_label}.view_{model}"

    @property
    def admin_path(self) -> str:
        url = reverse(f"admin:{self.admin_model.replace('.', '_')}_changelist")
        return f"{url}?{urlencode(self.admin_lookups)}"


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _span_text(since: datetime, until: datetime) -> str:
    return f"{since.astimezone(UTC):%Y-%m-%d %H:%M} to {until.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def drill_down(
    kind: str,
    *,
    at: datetime,
    age: str = "",
    tier: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
) -> DrillDown | None:
    """The list behind the number ``kind`` (None if there is no such list)."""
    requests = AccessRequest.objects.for_listing()
    grants = Grant.objects.for_listing()
    builders: dict[str, Callable[[], DrillDown]] = {
        "pending": lambda: _pending(requests, at, BUCKETS_BY_KEY.get(age)),
        "approved": lambda: _approved(
            requests, since or at - timedelta(days=DEFAULT_DAYS), until or at
        ),
        "break-glass": lambda: _break_glass(requests, since or month_start(at), until or at),
        "grants": lambda: _grants(grants, at, tier),
        "expiring": lambda: _expiring(grants, at),
        "violations": lambda: _violations(since or at - timedelta(days=DEFAULT_DAYS), until or at),
    }
    builder = builders.get(kind)
    return builder() if builder else None


def _pending(rows: QuerySet[AccessRequest], at: datetime, bucket: AgeBucket | None) -> DrillDown:
    lookups = {"state__exact": RequestState.PENDING.value}
    if bucket:
        lookups["created_at__lte"] = _iso(at - timedelta(days=bucket.from_days))
        if bucket.to_days is not None:
            lookups["created_at__gt"] = _iso(at - timedelta(days=bucket.to_days))
    return DrillDown(
        "pending",
        "Pending approvals" + (f": {bucket.label.lower()}" if bucket else ""),
        "Requests waiting for a decision"
        + (f", submitted {bucket.label.lower()} ago" if bucket else "")
        + ", oldest first.",
        "requests",
        rows.filter(pending_q(at, bucket)).order_by("created_at", "pk"),
        "accessreq.accessrequest",
        lookups,
    )


def _approved(rows: QuerySet[AccessRequest], since: datetime, until: datetime) -> DrillDown:
    return DrillDown(
        "approved",
        "Approved requests",
        f"Requests approved at their last stage from {_span_text(since, until)} (break-glass "
        "left out), slowest first: the dashboard's median time to approve is the middle of "
        "these.",
        "requests",
        rows.filter(approved_q(since, until))
        .annotate(
            wait=ExpressionWrapper(F("decided_at") - F("created_at"), output_field=DurationField())
        )
        .order_by("-wait", "pk"),
        "accessreq.accessrequest",
        {
            "state__in": ",".join(APPROVED_STATES),
            "kind__in": ",".join([RequestKind.NEW, RequestKind.EXTENSION]),
            "decided_at__gte": _iso(since),
            "decided_at__lt": _iso(until),
        },
    )


def _break_glass(rows: QuerySet[AccessRequest], since: datetime, until: datetime) -> DrillDown:
    return DrillDown(
        "break-glass",
        "Break-glass uses",
        f"Emergency access taken from {_span_text(since, until)}, newest first.",
        "requests",
        rows.filter(break_glass_q(since, until))
        .select_related("grant")
        .order_by("-created_at", "-pk"),
        "accessreq.accessrequest",
        {
            "kind__exact": RequestKind.BREAK_GLASS.value,
            "created_at__gte": _iso(since),
            "created_at__lt": _iso(until),
        },
    )


def _held_lookups(at: datetime) -> dict[str, str]:
    return {"revoked_at__isnull": "True", "starts_at__lte": _iso(at), "expires_at__gt": _iso(at)}


def _grants(rows: QuerySet[Grant], at: datetime, tier: str) -> DrillDown:
    label = RiskTier(tier).label if tier in RiskTier.values else ""
    condition = held_q(at) & (Q(entitlement__environment__risk_tier=tier) if label else Q())
    lookups = _held_lookups(at)
    if label:
        lookups["entitlement__environment__risk_tier__exact"] = tier
    return DrillDown(
        "grants",
        "Active grants" + (f": {label.lower()} risk" if label else ""),
        "Grants in force now"
        + (f" in {label.lower()}-risk environments" if label else "")
        + ", by the clock (started, not ended, not revoked), the soonest to end first.",
        "grants",
        rows.filter(condition).order_by("expires_at", "pk"),
        "accessreq.grant",
        lookups,
    )


def _expiring(rows: QuerySet[Grant], at: datetime) -> DrillDown:
    lookups = {
        **_held_lookups(at),
        "expires_at__lte": _iso(at + timedelta(days=EXPIRING_DAYS)),
    }
    return DrillDown(
        "expiring",
        "Grants expiring within 7 days",
        "Grants in force now that end in the next 7 days, the soonest first.",
        "grants",
        rows.filter(expiring_q(at)).order_by("expires_at", "pk"),
        "accessreq.grant",
        lookups,
    )


def _violations(since: datetime, until: datetime) -> DrillDown:
    actions = [s.action for s in POLICY_VIOLATIONS]
    return DrillDown(
        "violations",
        "Policy violations",
        f"Denied authorization checks, refused deployments, dead API tokens presented and CI "
        f"identities refused from {_span_text(since, until)}, newest first.",
        "events",
        AuditEvent.objects.filter(ledger_q(POLICY_VIOLATIONS, since, until)).order_by("-sequence"),
        "audit.auditevent",
        {
            "action__in": ",".join(actions),
            "occurred_at__gte": _iso(since),
            "occurred_at__lt": _iso(until),
        },
    )
