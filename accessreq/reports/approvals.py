"""Every access granted in a period: the request, its justification, who approved at which stage
and when, the MFA behind each decision, and a column naming any breach of policy.

Breaches are worked out from what was recorded, not from what the code meant to enforce, so the
report also catches what an admin edit or a bug let through: a requester or beneficiary among the
approvers, fewer approvals than a stage's quorum, a step-up stage decided on stale MFA, access
that started before its approval, a break-glass use never reviewed, and access held together
with an entitlement it conflicts with (separation of duties).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

from django.conf import settings
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Coalesce

from accessreq.models import (
    AccessRequest,
    ConflictRule,
    Decision,
    Grant,
    RequestKind,
)
from accessreq.reports import common
from accessreq.reports.base import Column, Report, register
from accessreq.reports.forms import PeriodForm


def _conflicting_grant() -> Exists:
    """A grant of the same person, overlapping this request's grant, on an entitlement that a
    conflict rule pairs with this one."""
    partners_first = ConflictRule.objects.filter(first=OuterRef(OuterRef("entitlement"))).values(
        "second"
    )
    partners_second = ConflictRule.objects.filter(second=OuterRef(OuterRef("entitlement"))).values(
        "first"
    )
    return Exists(
        Grant.objects.annotate(ended=Coalesce("revoked_at", "expires_at"))
        .filter(
            beneficiary=OuterRef("beneficiary"),
            starts_at__lt=OuterRef("grant__expires_at"),
            ended__gt=OuterRef("grant__starts_at"),
        )
        .filter(Q(entitlement__in=partners_first) | Q(entitlement__in=partners_second))
    )


def breaches(row: dict[str, Any]) -> list[str]:
    """What in this granted request broke policy, in words; empty when nothing did."""
    found = []
    approved = [a for a in row["approvals"] if a["decision"] == Decision.APPROVE]
    people = {a["approver_id"] for a in approved}
    if row["requester_id"] in people:
        found.append("Requester approved it")
    if row["beneficiary_id"] in people and row["beneficiary_id"] != row["requester_id"]:
        found.append("Beneficiary approved it")
    if row["kind"] == RequestKind.BREAK_GLASS:
        if row["reviewed_at"] is None:
            found.append(
                "Break-glass review overdue"
                if row["review_overdue_at"]
                else "Break-glass not reviewed yet"
            )
    else:
        if not approved:
            found.append("No approval recorded")
        limit = timedelta(seconds=settings.MFA_STEP_UP_SECONDS)
        for stage in row["stages"] or []:
            position = stage.get("position")
            at_stage = [a for a in approved if a["stage"] == position]
            quorum = int(stage.get("quorum", 1))
            if len(at_stage) < quorum:
                found.append(f"Stage {position}: {len(at_stage)} of {quorum} approvals")
            if stage.get("step_up") and any(
                a["mfa_age_seconds"] is None or timedelta(seconds=a["mfa_age_seconds"]) > limit
                for a in at_stage
            ):
                found.append(f"Stage {position}: decided without fresh MFA")
        last = max((a["decided_at"] for a in approved), default=None)
        if row["grant__request_id"] == row["pk"] and last and row["grant__starts_at"] < last:
            found.append("Access started before its approval")
    if row["conflicting"]:
        found.append("Held with a conflicting entitlement (separation of duties)")
    return found


@register
class Approvals(Report):
    slug = "approvals"
    title = "Approvals"
    summary = (
        "Every access granted in a period with its request, justification, approvers per stage, "
        "decision times and MFA, and a column flagging any breach of policy."
    )
    form_class = PeriodForm
    columns: ClassVar[list[Column]] = [
        Column("request", "Request", 0.6, link="request_detail"),
        Column("kind", "Kind", 0.7),
        Column("person", "For", 1.4),
        Column("entitlement", "Entitlement", 1.7),
        Column("tier", "Tier", 0.6),
        Column("breaches", "Policy breaches", 1.6),
        Column("requester", "Requested by", 1.4),
        Column("justification", "Justification", 1.7),
        Column("submitted", "Submitted", 1.0),
        Column("decisions", "Decisions (stage, who, when, MFA)", 2.6),
        Column("decided", "Granted", 1.0),
        Column("wait", "Time to decide", 0.7),
        Column("grant", "Grant", 0.6, link="grant_detail"),
    ]
    fields = (
        "pk",
        "kind",
        "requester_id",
        "requester__display_name",
        "requester__email",
        "beneficiary_id",
        "beneficiary__display_name",
        "beneficiary__email",
        *common.ENTITLEMENT_FIELDS,
        "justification",
        "stages",
        "created_at",
        "decided_at",
        "reviewed_at",
        "review_overdue_at",
        "grant_id",
        "grant__request_id",
        "grant__starts_at",
        "conflicting",
    )

    def queryset(self) -> QuerySet[AccessRequest]:
        requests: QuerySet[AccessRequest] = AccessRequest.objects.filter(
            grant__isnull=False,
            decided_at__gte=self.params["since"],
            decided_at__lt=self.params["until"],
        )
        requests = common.catalog_filters(
            requests, self.params, entitlement="entitlement", person="beneficiary"
        )
        return requests.annotate(conflicting=_conflicting_grant()).order_by("decided_at", "pk")

    def facts(self) -> list[tuple[str, str]]:
        return [
            ("Granted from", common.utc(self.params["since"])),
            ("Granted before", common.utc(self.params["until"])),
            *common.catalog_facts(self.params),
        ]

    def attach(self, records: list[dict[str, Any]]) -> None:
        approvals = common.approvals_by_request([record["pk"] for record in records])
        for record in records:
            record["approvals"] = approvals[record["pk"]]

    def cells(self, row: dict[str, Any]) -> list[Any]:
        return [
            row["pk"],
            str(RequestKind(row["kind"]).label),
            common.named(row["beneficiary__display_name"], row["beneficiary__email"]),
            common.entitlement_text(row),
            common.tier_text(row),
            "; ".join(breaches(row)) or "None",
            common.named(row["requester__display_name"], row["requester__email"]),
            row["justification"],
            common.utc(row["created_at"]),
            common.approvers(row["approvals"]),
            common.utc(row["decided_at"]),
            common.duration(row["decided_at"] - row["created_at"]),
            row["grant_id"],
        ]
