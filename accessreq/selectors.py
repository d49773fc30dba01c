"""Reusable reads for the access pages."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import Now

from accessreq.models import (
    AccessRequest,
    Approval,
    Delegation,
    Entitlement,
    EntitlementQuerySet,
    Grant,
    RequestKind,
    StageAssignment,
)
from accessreq.models.grants import GrantQuerySet
from accessreq.models.requests import AccessRequestQuerySet
from accessreq.states import RequestState
from portal import sql


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


def _held_now(user: Any) -> GrantQuerySet:
    return Grant.objects.filter(
        beneficiary=user,
        beneficiary__is_active=True,
        revoked_at__isnull=True,
        starts_at__lte=Now(),
        expires_at__gt=Now(),
    )


# _held_now for one scope. PostgreSQL plans the ORM's seven-table join in about 2.5 ms; this
# form in 0.5 ms, and prepared once per connection. Slugs are unique: each subquery gives one id.
# holds_scope and scope_grant_id fill in what is selected and in which order; the rule is one text.
_HOLDS_SCOPE_SQL = """
SELECT {select} FROM accessreq_grant g
JOIN portal_user u ON u.id = g.beneficiary_id
JOIN accessreq_entitlement e ON e.id = g.entitlement_id
JOIN accessreq_entitlement_scopes es ON es.entitlement_id = g.entitlement_id
WHERE g.beneficiary_id = %s AND u.is_active AND g.revoked_at IS NULL
  AND g.starts_at <= {now} AND g.expires_at > {now}
  AND e.system_id = (SELECT id FROM accessreq_system WHERE slug = %s)
  AND e.environment_id = (SELECT id FROM accessreq_environment WHERE slug = %s)
  AND es.scope_id = (SELECT id FROM accessreq_scope WHERE slug = %s)
{order}LIMIT 1
"""


def holds_scope(*, user: Any, scope: str, system: str, environment: str) -> bool:
    """Does ``user`` hold ``scope`` on ``system`` in ``environment`` right now?

    The one access check. It compares the grant's window with the database clock, so access ends
    at ``expires_at`` whether or not the expiry job has run, and a revoked grant never counts.
    The same rule as :func:`scopes_held` (a test holds the two together), as one hand-written
    statement: on the API's hot path, prepared on PostgreSQL, it costs a tenth of the ORM form.
    """
    if getattr(user, "pk", None) is None:
        return False
    query = _holds_scope_sql(connection.vendor, "1", "")
    return sql.fetch_one(query, [user.pk, system, environment, scope]) is not None


def scope_grant_id(*, user: Any, scope: str, system: str, environment: str) -> int | None:
    """The id of the grant by which ``user`` holds ``scope`` on ``system`` in ``environment``
    right now, or ``None`` exactly when :func:`holds_scope` says no (the same statement, a test
    holds them together). If two grants carry the scope, the one that ends last: a use is
    credited to it, so the other, redundant one is what shows as unused."""
    if getattr(user, "pk", None) is None:
        return None
    query = _holds_scope_sql(connection.vendor, "g.id", "ORDER BY g.expires_at DESC, g.id\n")
    row = sql.fetch_one(query, [user.pk, system, environment, scope])
    return int(row[0]) if row is not None else None


@functools.cache
def _holds_scope_sql(vendor: str, select: str, order: str) -> str:
    return _HOLDS_SCOPE_SQL.format(now=sql.NOW[vendor], select=select, order=order)


def scopes_held(*, user: Any) -> list[str]:
    """Every ``scope:system:environment`` that ``user`` holds right now (by the rule of
    :func:`holds_scope`), sorted; what an exchanged API token is limited to."""
    rows = (
        _held_now(user)
        .values_list(
            "entitlement__scopes__slug",
            "entitlement__system__slug",
            "entitlement__environment__slug",
        )
        .distinct()
    )
    return sorted({f"{scope}:{system}:{env}" for scope, system, env in rows if scope})


def inbox(*, user: Any, at: datetime) -> AccessRequestQuerySet:
    """Pending requests waiting for ``user`` at their current stage, directly or as a delegate,
    oldest first. Never the user's own requests or ones they already decided."""
    delegators = Delegation.objects.in_force(at).filter(delegate=user).values("delegator")
    # As in deciding_principal: nobody acts for someone who decided or was stood in for.
    principal_used = Approval.objects.filter(request=OuterRef("request")).filter(
        Q(approver=OuterRef("principal")) | Q(on_behalf_of=OuterRef("principal"))
    )
    assigned = (
        StageAssignment.objects.filter(request=OuterRef("pk"), stage=OuterRef("current_stage"))
        .filter(Q(principal=user) | Q(principal__in=delegators))
        .exclude(Exists(principal_used))
    )
    user_used = Approval.objects.filter(request=OuterRef("pk")).filter(
        Q(approver=user) | Q(on_behalf_of=user)
    )
    return (
        AccessRequest.objects.filter(state=RequestState.PENDING)
        .exclude(requester=user)
        .exclude(beneficiary=user)
        .exclude(beneficiary__owners=user)  # owners act through their service accounts
        .filter(Exists(assigned))
        .exclude(Exists(user_used))
        .for_listing()
        .order_by("created_at", "pk")
    )


def break_glass_to_review(*, user: Any, at: datetime) -> AccessRequestQuerySet:
    """Break-glass uses ``user`` (or someone they stand in for) must review, oldest first."""
    delegators = Delegation.objects.in_force(at).filter(delegate=user).values("delegator")
    assigned = StageAssignment.objects.filter(request=OuterRef("pk"), stage=0).filter(
        Q(principal=user) | Q(principal__in=delegators)
    )
    return (
        AccessRequest.objects.filter(kind=RequestKind.BREAK_GLASS, reviewed_at__isnull=True)
        .exclude(beneficiary=user)
        .filter(Exists(assigned))
        .for_listing()
        .select_related("grant")
        .order_by("created_at", "pk")
    )


def my_requests(*, user: Any) -> AccessRequestQuerySet:
    """Requests the user made or that are for them, newest first."""
    return (
        AccessRequest.objects.filter(Q(requester=user) | Q(beneficiary=user))
        .for_listing()
        .select_related("grant")
        .order_by("-created_at", "-pk")
    )


def my_grants(*, user: Any) -> GrantQuerySet:
    """The user's grants: live ones and those that ended, newest first."""
    return Grant.objects.filter(beneficiary=user).for_listing().order_by("-starts_at", "-pk")


def managed_grants(*, user: Any, at: datetime, text: str = "") -> GrantQuerySet:
    """Live grants on entitlements or systems ``user`` owns (security admins: all), matching
    ``text`` on system, environment, entitlement or holder; the soonest to end first."""
    from accessreq.models import System
    from portal.roles import is_security_admin

    qs = Grant.objects.live().filter(expires_at__gt=at)
    if not is_security_admin(user):
        qs = qs.filter(
            Q(entitlement__in=Entitlement.objects.filter(owners=user))
            | Q(entitlement__system__in=System.objects.filter(owners=user))
        )
    for word in text.split()[:8]:
        qs = qs.filter(
            Q(entitlement__name__icontains=word)
            | Q(entitlement__slug__icontains=word)
            | Q(entitlement__system__name__icontains=word)
            | Q(entitlement__system__slug__icontains=word)
            | Q(entitlement__environment__name__icontains=word)
            | Q(beneficiary__display_name__icontains=word)
            | Q(beneficiary__email__icontains=word)
        )
    return qs.for_listing().order_by("expires_at", "pk")


def service_accounts_visible_to(user: Any) -> Any:
    """Service accounts a person may open: those they own; all for security admins and auditors."""
    from portal.models import User
    from portal.roles import can_read_audit

    accounts = User.objects.filter(kind=User.Kind.SERVICE)
    if not getattr(user, "is_authenticated", False) or user.kind != User.Kind.HUMAN:
        return accounts.none()
    if can_read_audit(user):
        return accounts
    return accounts.filter(owners=user)


def service_accounts_managed_by(user: Any) -> Any:
    """Service accounts whose tokens a person may mint and rotate: the ones they own."""
    from portal.models import User

    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return User.objects.none()
    if user.kind != User.Kind.HUMAN:
        return User.objects.none()
    return User.objects.filter(kind=User.Kind.SERVICE, owners=user)
