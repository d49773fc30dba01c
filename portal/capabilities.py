"""What a person can use in the portal, read in one query: the navigation and the home page show
only what applies to them (pages stay reachable by address; each explains its empty state)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest

from portal import roles

_CACHE_ATTR = "_gatehouse_capabilities"


@dataclass(frozen=True)
class Capabilities:
    """Facts about one person that decide which parts of the portal are theirs."""

    security_admin: bool = False
    auditor: bool = False
    on_call: bool = False
    staff: bool = False
    manages_people: bool = False
    owns_something: bool = False
    asked_to_approve: bool = False  # assigned to a stage now or before, or standing in for someone
    has_review_items: bool = False
    has_requests: bool = False
    has_grants: bool = False
    owns_service_accounts: bool = False
    reviews_pending: int = 0  # items waiting for this reviewer in open campaigns

    @property
    def read_only(self) -> bool:
        """Auditors who are not also security admins look but do not act."""
        return self.auditor and not self.security_admin

    @property
    def approver(self) -> bool:
        return (
            self.security_admin
            or self.manages_people
            or self.owns_something
            or self.asked_to_approve
        )

    @property
    def reviewer(self) -> bool:
        """Review campaigns ask holders' managers and entitlement or system owners."""
        return self.has_review_items or self.manages_people or self.owns_something

    @property
    def requester(self) -> bool:
        return not self.read_only or self.has_requests

    @property
    def holder(self) -> bool:
        return not self.read_only or self.has_grants

    @property
    def reads_audit(self) -> bool:
        return self.auditor or self.security_admin

    @property
    def pipelines(self) -> bool:
        """Service accounts' pages: their owners, security admins (issuers) and auditors."""
        return self.owns_service_accounts or self.reads_audit


def _read(user: Any) -> Capabilities:
    from django.utils import timezone

    from accessreq.campaign_states import CampaignState, ReviewDecision
    from accessreq.models import (
        AccessRequest,
        Delegation,
        Entitlement,
        Grant,
        ReviewItem,
        StageAssignment,
        System,
    )
    from portal.models import User

    if not getattr(user, "is_authenticated", False):
        return Capabilities()
    me = OuterRef("pk")
    pending_reviews = (
        ReviewItem.objects.filter(
            reviewer=me, decision=ReviewDecision.PENDING, campaign__state=CampaignState.OPEN
        )
        .order_by()
        .values("reviewer")
        .annotate(n=Count("pk"))
        .values("n")
    )
    row = (
        User.objects.filter(pk=user.pk)
        .annotate(
            manages_people=Exists(User.objects.filter(manager=me, is_active=True)),
            owns_entitlement=Exists(Entitlement.objects.filter(owners=me)),
            owns_system=Exists(System.objects.filter(owners=me)),
            assigned=Exists(StageAssignment.objects.filter(principal=me)),
            stands_in=Exists(Delegation.objects.in_force(timezone.now()).filter(delegate=me)),
            has_review_items=Exists(ReviewItem.objects.filter(reviewer=me)),
            has_requests=Exists(AccessRequest.objects.filter(Q(requester=me) | Q(beneficiary=me))),
            has_grants=Exists(Grant.objects.filter(beneficiary=me)),
            owns_service_accounts=Exists(
                User.objects.filter(kind=User.Kind.SERVICE, owners=me, is_active=True)
            ),
            reviews_pending=Coalesce(Subquery(pending_reviews), 0),
        )
        .values(
            "manages_people",
            "owns_entitlement",
            "owns_system",
            "assigned",
            "stands_in",
            "has_review_items",
            "has_requests",
            "has_grants",
            "owns_service_accounts",
            "reviews_pending",
        )
        .get()
    )
    return Capabilities(
        security_admin=roles.is_security_admin(user),
        auditor=roles.is_auditor(user),
        on_call=roles.is_on_call(user),
        staff=bool(user.is_staff),
        manages_people=row["manages_people"],
        owns_something=row["owns_entitlement"] or row["owns_system"],
        asked_to_approve=row["assigned"] or row["stands_in"],
        has_review_items=row["has_review_items"],
        has_requests=row["has_requests"],
        has_grants=row["has_grants"],
        owns_service_accounts=row["owns_service_accounts"],
        reviews_pending=row["reviews_pending"],
    )


def for_request(request: HttpRequest) -> Capabilities:
    """The signed-in person's capabilities, read once per request."""
    cached = getattr(request, _CACHE_ATTR, None)
    if cached is None:
        cached = _read(request.user)
        setattr(request, _CACHE_ATTR, cached)
    return cached
