"""Every break-glass use in a period: who took what, why, for which incident, how long the access
lasted, and where its after-the-fact review stands.

A use is a request of kind ``break_glass`` (``accessreq.services.breakglass``); the period is
about when it was taken. How long it lasted runs from the grant's start to its revocation or its
end; one still running says so. The review is reviewed (by whom, when, with the comment, and
whether it came late), overdue (since the review was due, with the alert's time once raised) or
due by a time still ahead.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from django.db.models import QuerySet

from accessreq.models import AccessRequest, RequestKind
from accessreq.reports import common
from accessreq.reports.base import Column, Report, register
from accessreq.reports.forms import PeriodForm

STILL_HELD = "Still held"


def ended(grant: Any, at: datetime) -> str:
    """How the access ended, or that it has not, as of ``at``."""
    if grant.revoked_at is not None:
        text = f"Revoked {common.utc(grant.revoked_at)}"
        if grant.revoked_by_id:
            text += f" by {common.person(grant.revoked_by)}"
        return text
    if grant.expires_at <= at:
        return f"Expired {common.utc(grant.expires_at)}"
    return f"{STILL_HELD} until {common.utc(grant.expires_at)}"


def lasted(grant: Any, at: datetime) -> str:
    """Grant start to its revocation or end; ``Still held`` while it runs."""
    if grant.revoked_at is not None:
        return common.duration(max(grant.revoked_at, grant.starts_at) - grant.starts_at)
    if grant.expires_at <= at:
        return common.duration(grant.expires_at - grant.starts_at)
    return STILL_HELD


def review_status(access_request: Any, at: datetime) -> str:
    due = access_request.review_due_at
    if access_request.reviewed_at is not None:
        text = (
            f"Reviewed by {common.person(access_request.reviewed_by)} at "
            f"{common.utc(access_request.reviewed_at)}"
        )
        if due is not None and access_request.reviewed_at > due:
            text += f", late (was due by {common.utc(due)})"
        return f"{text}: {access_request.review_comment}"
    if access_request.review_overdue_at is not None or (due is not None and due <= at):
        text = f"Overdue since {common.utc(due or access_request.review_overdue_at)}"
        if access_request.review_overdue_at is not None:
            text += f" (alert raised {common.utc(access_request.review_overdue_at)})"
        return text
    if due is not None:
        return f"Due by {common.utc(due)}"
    return "Not reviewed"


@register
class BreakGlass(Report):
    slug = "break-glass"
    title = "Break-glass uses"
    summary = (
        "Every emergency access taken in a period: who, what, the reason and incident, how long "
        "the access lasted, and the status of its after-the-fact review."
    )
    form_class = PeriodForm
    columns: ClassVar[list[Column]] = [
        Column("request", "Use", 0.5, link="request_detail"),
        Column("person", "Who", 1.4),
        Column("entitlement", "Entitlement", 1.6),
        Column("tier", "Tier", 0.6),
        Column("reason", "Reason", 1.8),
        Column("incident", "Incident", 0.7),
        Column("started", "Started", 1.0),
        Column("ended", "Ended", 1.3),
        Column("lasted", "Lasted", 0.6),
        Column("grant", "Grant", 0.5, link="grant_detail"),
        Column("review", "Review", 2.2),
    ]

    def queryset(self) -> QuerySet[AccessRequest]:
        uses: QuerySet[AccessRequest] = AccessRequest.objects.filter(
            kind=RequestKind.BREAK_GLASS,
            created_at__gte=self.params["since"],
            created_at__lt=self.params["until"],
            grant__isnull=False,
        )
        uses = common.catalog_filters(
            uses, self.params, entitlement="entitlement", person="beneficiary"
        )
        return uses.select_related(
            "beneficiary",
            "entitlement__system",
            "entitlement__environment",
            "grant__revoked_by",
            "reviewed_by",
        ).order_by("created_at", "pk")

    def facts(self) -> list[tuple[str, str]]:
        return [
            ("Taken from", common.utc(self.params["since"])),
            ("Taken before", common.utc(self.params["until"])),
            *common.catalog_facts(self.params),
        ]

    def cells(self, access_request: Any) -> list[Any]:
        grant = access_request.grant
        return [
            access_request.pk,
            common.person(access_request.beneficiary),
            common.entitlement(access_request.entitlement),
            access_request.entitlement.environment.get_risk_tier_display(),
            access_request.justification,
            access_request.incident,
            common.utc(grant.starts_at),
            ended(grant, self.at),
            lasted(grant, self.at),
            grant.pk,
            review_status(access_request, self.at),
        ]
