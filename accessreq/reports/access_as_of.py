"""Who held which entitlement at a moment, with the grant and the request behind it.

A grant counted as held at ``T`` started by then and had neither ended nor been revoked: its
times *as they stood at T* are read from the grant's history (an extension made later does not
reach back), and a revocation is final, so the current revocation time decides the rest.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db.models import F, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from accessreq.models import Grant, GrantState
from accessreq.reports import common
from accessreq.reports.base import Column, Report, register
from accessreq.reports.forms import AsOfForm


def grants_held_at(at: Any) -> QuerySet[Grant]:
    """Grants held at ``at``, each annotated with ``then_expires_at`` (its end as known then)."""
    history = Grant.history.model.objects.filter(id=OuterRef("pk"), history_date__lte=at).order_by(
        "-history_date", "-history_id"
    )
    return (
        Grant.objects.filter(starts_at__lte=at, created_at__lte=at, expires_at__gt=at)
        .filter(Q(revoked_at__isnull=True) | Q(revoked_at__gt=at))
        .annotate(
            then_expires_at=Coalesce(Subquery(history.values("expires_at")[:1]), F("expires_at"))
        )
        .filter(then_expires_at__gt=at)
    )


@register
class AccessAsOf(Report):
    slug = "access-as-of"
    title = "Access as of a date"
    summary = (
        "Who held which entitlement at a moment in the past or now, with the grant and the "
        "approved request behind each one."
    )
    form_class = AsOfForm
    columns: ClassVar[list[Column]] = [
        Column("person", "Person", 1.6),
        Column("team", "Team", 0.8),
        Column("entitlement", "Entitlement", 1.8),
        Column("tier", "Tier", 0.6),
        Column("grant", "Grant", 0.5, link="grant_detail"),
        Column("since", "Held since", 1.0),
        Column("until", "Until (as known then)", 1.0),
        Column("request", "Request", 0.6, link="request_detail"),
        Column("requester", "Requested by", 1.4),
        Column("justification", "Justification", 1.8),
        Column("approvers", "Approved by", 2.2),
        Column("now", "Now", 1.1),
    ]
    fields = (
        "pk",
        "beneficiary__display_name",
        "beneficiary__email",
        "beneficiary__team__name",
        *common.ENTITLEMENT_FIELDS,
        "state",
        "break_glass",
        "starts_at",
        "expires_at",
        "then_expires_at",
        "revoked_at",
        "revoked_by__display_name",
        "revoked_by__email",
        "request_id",
        "request__requester__display_name",
        "request__requester__email",
        "request__justification",
    )

    def queryset(self) -> QuerySet[Grant]:
        grants = common.catalog_filters(
            grants_held_at(self.params["as_of"]),
            self.params,
            entitlement="entitlement",
            person="beneficiary",
        )
        return grants.order_by(
            "beneficiary__display_name", "beneficiary__email", "entitlement__pk", "pk"
        )

    def facts(self) -> list[tuple[str, str]]:
        return [("As of", common.utc(self.params["as_of"])), *common.catalog_facts(self.params)]

    def attach(self, records: list[dict[str, Any]]) -> None:
        approvals = common.approvals_by_request([record["request_id"] for record in records])
        for record in records:
            record["approvals"] = approvals[record["request_id"]]

    def cells(self, grant: dict[str, Any]) -> list[Any]:
        if grant["state"] == GrantState.REVOKED:
            now = f"Revoked {common.utc(grant['revoked_at'])}"
            if grant["revoked_by__email"]:
                now += " by " + common.named(
                    grant["revoked_by__display_name"], grant["revoked_by__email"]
                )
        elif grant["expires_at"] <= self.at:
            now = f"Ended {common.utc(grant['expires_at'])}"
        else:
            now = f"Held until {common.utc(grant['expires_at'])}"
        return [
            common.named(grant["beneficiary__display_name"], grant["beneficiary__email"]),
            grant["beneficiary__team__name"] or "",
            common.entitlement_text(grant),
            common.tier_text(grant),
            grant["pk"],
            common.utc(grant["starts_at"]),
            common.utc(grant["then_expires_at"]),
            grant["request_id"],
            common.named(
                grant["request__requester__display_name"], grant["request__requester__email"]
            ),
            grant["request__justification"],
            common.approvers(grant["approvals"])
            or ("Break-glass" if grant["break_glass"] else "No approval recorded"),
            now,
        ]
