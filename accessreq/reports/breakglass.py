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


def ended(row: dict[str, Any], at: datetime) -> str:
    """How the access ended, or that it has not, as of ``at``."""
    if row["grant__revoked_at"] is not None:
        text = f"Revoked {common.utc(row['grant__revoked_at'])}"
        if row["grant__revoked_by__email"]:
            text += " by " + common.named(
                row["grant__revoked_by__display_name"], row["grant__revoked_by__email"]
            )
        return text
    if row["grant__expires_at"] <= at:
        return f"Expired {common.utc(row['grant__expires_at'])}"
    return f"{STILL_HELD} until {common.utc(row['grant__expires_at'])}"


def lasted(row: dict[str, Any], at: datetime) -> str:
    """Grant start to its revocation or end; ``Still held`` while it runs."""
    start = row["grant__starts_at"]
    if row["grant__revoked_at"] is not None:
        return common.duration(max(row["grant__revoked_at"], start) - start)
    if row["grant__expires_at"] <= at:
        return common.duration(row["grant__expires_at"] - start)
    return STILL_HELD


def review_status(row: dict[str, Any], at: datetime) -> str:
    due, overdue = row["review_due_at"], row["review_overdue_at"]
    if row["reviewed_at"] is not None:
        who = common.named(row["reviewed_by__display_name"], row["reviewed_by__email"])
        text = f"Reviewed by {who} at {common.utc(row['reviewed_at'])}"
        if due is not None and row["reviewed_at"] > due:
            text += f", late (was due by {common.utc(due)})"
        return f"{text}: {row['review_comment']}"
    if due is not None and (overdue is not None or due <= at):
        text = f"Overdue since {common.utc(due)}"
        if overdue is not None:
            text += f" (alert raised {common.utc(overdue)})"
        return text
    if overdue is not None:
        return f"Overdue (alert raised {common.utc(overdue)})"
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
        Column("review", "Review", 2.2),
        Column("reason", "Reason", 1.8),
        Column("incident", "Incident", 0.7),
        Column("started", "Started", 1.0),
        Column("ended", "Ended", 1.3),
        Column("lasted", "Lasted", 0.6),
        Column("grant", "Grant", 0.5, link="grant_detail"),
    ]
    fields = (
        "pk",
        "beneficiary__display_name",
        "beneficiary__email",
        *common.ENTITLEMENT_FIELDS,
        "justification",
        "incident",
        "grant_id",
        "grant__starts_at",
        "grant__expires_at",
        "grant__revoked_at",
        "grant__revoked_by__display_name",
        "grant__revoked_by__email",
        "review_due_at",
        "reviewed_at",
        "reviewed_by__display_name",
        "reviewed_by__email",
        "review_comment",
        "review_overdue_at",
    )

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
        return uses.order_by("created_at", "pk")

    def facts(self) -> list[tuple[str, str]]:
        return [
            ("Taken from", common.utc(self.params["since"])),
            ("Taken before", common.utc(self.params["until"])),
            *common.catalog_facts(self.params),
        ]

    def cells(self, row: dict[str, Any]) -> list[Any]:
        return [
            row["pk"],
            common.named(row["beneficiary__display_name"], row["beneficiary__email"]),
            common.entitlement_text(row),
            common.tier_text(row),
            review_status(row, self.at),
            row["justification"],
            row["incident"],
            common.utc(row["grant__starts_at"]),
            ended(row, self.at),
            lasted(row, self.at),
            row["grant_id"],
        ]
