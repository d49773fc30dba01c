"""What an approver needs beside each request in the inbox, loaded in a fixed number of queries.

:func:`inbox_rows` takes one page of requests from :func:`accessreq.selectors.inbox` and adds,
per row: the stage and progress, whom the approver stands in for, the beneficiary's live access
on the same system, separation-of-duties warnings, and their last decided requests on that
system. Each kind of context is one query for the whole page, grouped in Python, so the page costs
the same number of queries whether it holds one request or a thousand.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import CharField, F, Q, Value, Window, prefetch_related_objects
from django.db.models.functions import Cast, Coalesce, Concat, RowNumber

from accessreq.models import (
    LIVE_GRANT_STATES,
    AccessRequest,
    Approval,
    ConflictRule,
    Decision,
    Delegation,
    Grant,
    StageAssignment,
)
from accessreq.services.requests import requires_step_up
from accessreq.states import RequestState
from portal.models import User

# How many of the beneficiary's earlier requests on the same system each row shows.
HISTORY_PER_ROW = 3


@dataclass
class InboxRow:
    """One waiting request and the context shown beside it."""

    request: AccessRequest
    stage: dict[str, Any]
    stage_count: int
    approvals_at_stage: int = 0
    # The approver the viewer stands in for as a delegate; None when they decide for themself.
    on_behalf_of: User | None = None
    # False when the viewer's only way in is through someone who has already decided.
    decidable: bool = True
    current_access: list[Grant] = field(default_factory=list)
    sod_warnings: list[str] = field(default_factory=list)
    history: list[AccessRequest] = field(default_factory=list)

    @property
    def needs_step_up(self) -> bool:
        return requires_step_up(self.request)

    @property
    def bulk_eligible(self) -> bool:
        return bulk_eligible(self.request)

    @property
    def stages(self) -> list[dict[str, Any]]:
        """The frozen stages with whether each is done or current, for the progress line."""
        current = self.request.current_stage
        return [
            {**s, "done": s["position"] < current, "current": s["position"] == current}
            for s in self.request.stages
        ]


def bulk_eligible(access_request: AccessRequest) -> bool:
    """Low and medium tier requests whose current stage needs no step-up may be approved in bulk;
    anything riskier is approved one by one, with a fresh second factor."""
    return not requires_step_up(access_request)


def inbox_rows(requests: Iterable[AccessRequest], *, user: User, at: datetime) -> list[InboxRow]:
    """The context for each of ``requests`` (loaded with ``for_listing()``), as ``user`` sees it."""
    page = list(requests)
    if not page:
        return []
    rows = [
        InboxRow(
            request=r,
            stage=r.stage(r.current_stage) or {"position": r.current_stage, "rule_label": ""},
            stage_count=len(r.stages),
        )
        for r in page
    ]
    prefetch_related_objects(page, "entitlement__scopes")
    _add_decisions_and_principals(rows, user=user, at=at)
    _add_current_access(rows, at=at)
    _add_sod_warnings(rows, at=at)
    _add_history(rows)
    return rows


def _add_decisions_and_principals(rows: list[InboxRow], *, user: User, at: datetime) -> None:
    """Approvals so far at the current stage, and whom ``user`` would decide for (mirrors
    :func:`accessreq.services.requests.deciding_principal`)."""
    ids = [row.request.pk for row in rows]
    approvals: dict[int, list[tuple[int, int, int | None, str]]] = defaultdict(list)
    for request_id, stage, approver, on_behalf_of, decision in Approval.objects.filter(
        request__in=ids
    ).values_list("request", "stage", "approver", "on_behalf_of", "decision"):
        approvals[request_id].append((stage, approver, on_behalf_of, decision))

    delegators = {
        d.delegator_id: d.delegator
        for d in Delegation.objects.in_force(at)
        .filter(delegate=user)
        .select_related("delegator")
        .order_by("delegator__display_name", "delegator__email")
    }
    assigned: dict[tuple[int, int], set[int]] = defaultdict(set)
    for request_id, stage, principal in StageAssignment.objects.filter(
        request__in=ids, principal__in=[user.pk, *delegators]
    ).values_list("request", "stage", "principal"):
        assigned[(request_id, stage)].add(principal)

    for row in rows:
        decided = approvals[row.request.pk]
        row.approvals_at_stage = sum(
            1
            for stage, _, _, decision in decided
            if stage == row.request.current_stage and decision == Decision.APPROVE
        )
        used = {a for _, a, _, _ in decided} | {p for _, _, p, _ in decided if p}
        mine = assigned[(row.request.pk, row.request.current_stage)]
        if user.pk in mine and user.pk not in used:
            continue
        stand_in = [p for pk, p in delegators.items() if pk in mine and pk not in used]
        if stand_in:
            row.on_behalf_of = stand_in[0]
        else:
            row.decidable = False


def _add_current_access(rows: list[InboxRow], *, at: datetime) -> None:
    """Each beneficiary's live grants on the requested entitlement's system."""
    beneficiaries = {row.request.beneficiary_id for row in rows}
    systems = {row.request.entitlement.system_id for row in rows}
    grants: dict[tuple[int, int], list[Grant]] = defaultdict(list)
    for grant in (
        Grant.objects.filter(
            beneficiary__in=beneficiaries,
            entitlement__system__in=systems,
            state__in=LIVE_GRANT_STATES,
            revoked_at__isnull=True,
            expires_at__gt=at,
        )
        .select_related("entitlement__environment")
        .order_by("entitlement__environment__name", "entitlement__name", "pk")
    ):
        grants[(grant.beneficiary_id, grant.entitlement.system_id)].append(grant)
    for row in rows:
        row.current_access = grants[(row.request.beneficiary_id, row.request.entitlement.system_id)]


def _add_sod_warnings(rows: list[InboxRow], *, at: datetime) -> None:
    """Conflict rules naming the requested entitlement where the beneficiary holds, or has asked
    for, the other one (the same test as :func:`accessreq.services.requests.sod_conflicts`)."""
    entitlements = {row.request.entitlement_id for row in rows}
    rules = list(
        ConflictRule.objects.filter(Q(first__in=entitlements) | Q(second__in=entitlements))
        .select_related(
            "first__system", "first__environment", "second__system", "second__environment"
        )
        .order_by("pk")
    )
    if not rules:
        return
    others = {r.first_id for r in rules} | {r.second_id for r in rules}
    beneficiaries = {row.request.beneficiary_id for row in rows}
    held = set(
        Grant.objects.filter(
            beneficiary__in=beneficiaries,
            entitlement__in=others,
            revoked_at__isnull=True,
            expires_at__gt=at,
        ).values_list("beneficiary", "entitlement")
    )
    asked = set(
        AccessRequest.objects.filter(
            beneficiary__in=beneficiaries, entitlement__in=others, state=RequestState.PENDING
        ).values_list("beneficiary", "entitlement")
    )
    for row in rows:
        entitlement_id = row.request.entitlement_id
        beneficiary = row.request.beneficiary
        for rule in rules:
            if entitlement_id not in (rule.first_id, rule.second_id):
                continue
            other = rule.second if rule.first_id == entitlement_id else rule.first
            key = (beneficiary.pk, other.pk)
            if key in held or key in asked:
                verb = "holds" if key in held else "has requested"
                row.sod_warnings.append(
                    f"{beneficiary} {verb} {other}, which conflicts: {rule.reason}"
                )


def _add_history(rows: list[InboxRow]) -> None:
    """The beneficiary's last few requests on the same system that are no longer pending.

    One query: a row number per (beneficiary, system), newest first, keeps at most
    ``HISTORY_PER_ROW`` of each pair. The pairs are matched as ``"beneficiary:system"`` strings in
    one IN list, so a page of many requests doesn't build a deep OR expression.
    """
    pairs = {f"{row.request.beneficiary_id}:{row.request.entitlement.system_id}" for row in rows}
    when = Coalesce("decided_at", "created_at")
    history = (
        AccessRequest.objects.exclude(state=RequestState.PENDING)
        .filter(beneficiary__in={row.request.beneficiary_id for row in rows})
        .alias(
            pair=Concat(
                Cast("beneficiary_id", CharField()),
                Value(":"),
                Cast("entitlement__system_id", CharField()),
                output_field=CharField(),
            )
        )
        .filter(pair__in=pairs)
        .annotate(
            position=Window(
                RowNumber(),
                partition_by=[F("beneficiary_id"), F("entitlement__system_id")],
                order_by=[when.desc(), F("pk").desc()],
            )
        )
        .filter(position__lte=HISTORY_PER_ROW)
        .select_related("entitlement__system", "entitlement__environment")
        .order_by("beneficiary_id", "entitlement__system_id", "position")
    )
    grouped: dict[tuple[int, int], list[AccessRequest]] = defaultdict(list)
    for past in history:
        grouped[(past.beneficiary_id, past.entitlement.system_id)].append(past)
    for row in rows:
        row.history = grouped[(row.request.beneficiary_id, row.request.entitlement.system_id)]
