"""The reports' rows against constructed histories: access held at a moment across a revoke, an
expiry and an extension; every breach the approvals report flags; failed and refused attempts
from the real sign-in pages. Times are moved by rewriting the database, never by patching."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db.models import F

from accessreq.models import Approval, ConflictRule, Decision, Grant, RiskTier
from accessreq.reports.access_as_of import AccessAsOf
from accessreq.reports.approvals import Approvals
from accessreq.reports.attempts import Attempts
from accessreq.reports.base import Report
from accessreq.services.common import now
from accessreq.services.grants import grant_revoke
from accessreq.services.reports import build_report
from tests.accessreq.workflow_helpers import (
    STALE,
    approve,
    direct_grant,
    make_entitlement,
    make_policy,
    submit,
)
from tests.factories import TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)


def rows(report: Report) -> list[dict[str, Any]]:
    keys = [column.key for column in report.columns]
    return [dict(zip(keys, cells, strict=True)) for cells in report.rows()]


def as_of(at, **query) -> AccessAsOf:
    query["as_of"] = at.strftime("%Y-%m-%d %H:%M:%S")
    report = build_report("access-as-of", query, at=now())
    assert isinstance(report, AccessAsOf)
    return report


def grant_between(holder, entitlement, start, end) -> Grant:
    """A grant from ``start`` to ``end`` whose history says it was made at ``start``."""
    grant = direct_grant(holder, entitlement)
    Grant.objects.filter(pk=grant.pk).update(starts_at=start, expires_at=end, created_at=start)
    Grant.history.model.objects.filter(id=grant.pk).update(
        starts_at=start, expires_at=end, created_at=start, history_date=start
    )
    return Grant.objects.get(pk=grant.pk)


def test_access_as_of_follows_revocations_expiries_and_history(owner, security_admin):
    clock = now()
    team = TeamFactory(name="Payments")
    ada = UserFactory(display_name="Ada Held", team=team)
    bob = UserFactory(display_name="Bob Revoked")
    cyd = UserFactory(display_name="Cyd Expired")
    dee = UserFactory(display_name="Dee Extended")
    deploy = make_entitlement(tier=RiskTier.HIGH, name="deploy")

    held = grant_between(ada, deploy, clock - 10 * DAY, clock + 10 * DAY)
    revoked = grant_between(bob, deploy, clock - 10 * DAY, clock + 10 * DAY)
    grant_revoke(actor=security_admin, grant_id=revoked.pk, reason="Left the on-call rota")
    Grant.objects.filter(pk=revoked.pk).update(revoked_at=clock - 3 * DAY)
    Grant.history.model.objects.filter(id=revoked.pk, revoked_at__isnull=False).update(
        history_date=clock - 3 * DAY, revoked_at=clock - 3 * DAY
    )
    grant_between(cyd, deploy, clock - 10 * DAY, clock - 2 * DAY)
    # Granted until -6 days; extended on day -7 to +5 days: at -8 days the end known was -6.
    extended = grant_between(dee, deploy, clock - 10 * DAY, clock - 6 * DAY)
    Grant.objects.filter(pk=extended.pk).update(expires_at=clock + 5 * DAY)
    Grant.objects.get(pk=extended.pk).save()  # the extension's history row, moved to -7 days
    Grant.history.model.objects.filter(id=extended.pk, history_date__gt=clock - DAY).update(
        history_date=clock - 7 * DAY
    )
    assert held.pk

    before = {row["person"].split(" <")[0]: row for row in rows(as_of(clock - 8 * DAY))}
    assert set(before) == {"Ada Held", "Bob Revoked", "Cyd Expired", "Dee Extended"}
    assert before["Dee Extended"]["until"] == (clock - 6 * DAY).strftime("%Y-%m-%d %H:%M UTC")
    assert before["Ada Held"]["team"] == "Payments"
    assert before["Bob Revoked"]["now"].startswith("Revoked ")
    assert before["Ada Held"]["approvers"] == "No approval recorded"

    middle = {row["person"].split(" <")[0] for row in rows(as_of(clock - 5 * DAY))}
    assert middle == {"Ada Held", "Bob Revoked", "Cyd Expired", "Dee Extended"}
    after_revoke = {row["person"].split(" <")[0] for row in rows(as_of(clock - 2.5 * DAY))}
    assert after_revoke == {"Ada Held", "Cyd Expired", "Dee Extended"}
    after_expiry = {row["person"].split(" <")[0] for row in rows(as_of(clock - DAY))}
    assert after_expiry == {"Ada Held", "Dee Extended"}
    # Before any of it started, nobody held anything.
    assert rows(as_of(clock - 11 * DAY)) == []
    # Filters narrow it: by team, by person.
    assert [r["person"] for r in rows(as_of(clock - DAY, team=str(team.pk)))] == [
        before["Ada Held"]["person"]
    ]
    assert len(rows(as_of(clock - DAY, person="dee"))) == 1


def test_as_of_in_the_future_is_refused():
    with pytest.raises(Exception, match="Pick a moment in the past"):
        as_of(now() + DAY)


def approvals_rows(**query) -> dict[int, dict[str, Any]]:
    report = build_report("approvals", query, at=now())
    assert isinstance(report, Approvals)
    return {row["request"]: row for row in rows(report)}


def test_approvals_lists_decisions_and_flags_every_breach(requester, manager, owner, settings):
    clean_ent = make_entitlement(tier=RiskTier.LOW, owners=[owner], name="read")
    clean = approve(manager, submit(requester, clean_ent))
    # A stage that needs step-up MFA, decided on a stale code (a later edit let it through).
    policy = make_policy("Step-up", ("entitlement_owner", 1, True))
    stepped = make_entitlement(tier=RiskTier.HIGH, owners=[owner], policy=policy, name="deploy")
    stale = approve(owner, submit(requester, stepped))
    Approval.objects.filter(request=stale).update(mfa_age_seconds=STALE.age_seconds)
    # A requester among the approvers, access before approval, and a conflicting grant.
    other = make_entitlement(tier=RiskTier.LOW, owners=[owner], name="release")
    selfish = approve(manager, submit(requester, other))
    Approval.objects.filter(request=selfish).update(approver=requester)
    Grant.objects.filter(pk=selfish.grant_id).update(starts_at=F("starts_at") - timedelta(hours=1))
    ConflictRule.objects.create(first=clean_ent, second=other, reason="No reading and releasing")

    found = approvals_rows()
    assert set(found) == {clean.pk, stale.pk, selfish.pk}
    assert "Stage 1: " in found[clean.pk]["decisions"]
    assert "approved" in found[clean.pk]["decisions"]
    assert "(totp, MFA 10s old)" in found[clean.pk]["decisions"]
    sod = "Held with a conflicting entitlement (separation of duties)"
    assert found[clean.pk]["breaches"] == sod
    assert found[stale.pk]["breaches"] == "Stage 1: decided without fresh MFA"
    assert "Requester approved it" in found[selfish.pk]["breaches"]
    assert "Access started before its approval" in found[selfish.pk]["breaches"]
    assert found[clean.pk]["justification"] == clean.justification

    # The period is about when access was granted.
    clean.__class__.objects.filter(pk=clean.pk).update(decided_at=now() - 40 * DAY)
    assert clean.pk not in approvals_rows()
    assert clean.pk in approvals_rows(since=(now() - 41 * DAY).strftime("%Y-%m-%d %H:%M"))


def test_a_quorum_not_met_and_a_break_glass_not_reviewed_are_flagged(
    requester, manager, owner, settings
):
    from accessreq.services.breakglass import break_glass_take
    from portal.roles import ON_CALL, ensure_groups
    from tests.accessreq.workflow_helpers import FRESH

    two = make_policy("Two owners", ("entitlement_owner", 2, False))
    second_owner = UserFactory(display_name="Second Owner")
    ent = make_entitlement(tier=RiskTier.MEDIUM, owners=[owner, second_owner], policy=two)
    access_request = submit(requester, ent)
    approve(owner, access_request)
    access_request = approve(second_owner, access_request)
    Approval.objects.filter(request=access_request, approver=second_owner).update(
        decision=Decision.DENY
    )
    ensure_groups()
    from django.contrib.auth.models import Group

    requester.groups.add(Group.objects.get(name=ON_CALL))
    urgent = make_entitlement(tier=RiskTier.CRITICAL, emergency_capable=True, name="db-admin")
    glass = break_glass_take(
        actor=requester,
        entitlement=urgent,
        reason="Database is down for every customer",
        incident="INC-42",
        duration=timedelta(hours=1),
        mfa=FRESH,
    )
    found = approvals_rows()
    assert found[access_request.pk]["breaches"] == "Stage 1: 1 of 2 approvals"
    assert found[glass.pk]["breaches"] == "Break-glass not reviewed yet"
    assert found[glass.pk]["kind"] == "Break-glass"


def test_attempts_come_from_the_real_sign_in_and_api(client, requester):
    client.post("/accounts/login/", {"login": requester.email, "password": "wrong password"})
    response = client.post(
        "/api/v1/token", data={"id_token": "not.a.jwt"}, content_type="application/json"
    )
    assert response.status_code in (400, 401), response.content
    # SQLite's clock has millisecond steps and the period ends before ``at``: read the report a
    # step after the event, as a person clicking would, or an event stamped in the same
    # millisecond falls outside it.
    report = build_report("attempts", {}, at=now() + timedelta(milliseconds=1))
    assert isinstance(report, Attempts)
    found = rows(report)
    kinds = sorted(row["kind"] for row in found)
    assert kinds == ["Failed sign-ins", "Refused API calls"]
    sign_in = next(row for row in found if row["kind"] == "Failed sign-ins")
    assert requester.email in f"{sign_in['actor']} {sign_in['target']} {sign_in['reason']}"
    refused = next(row for row in found if row["kind"] == "Refused API calls")
    assert refused["action"] == "A CI identity token was refused at the token exchange"
    assert refused["reason"]
    assert [row["kind"] for row in rows(build_report("attempts", {"kind": "api"}, at=now()))] == [
        "Refused API calls"
    ]
    assert rows(build_report("attempts", {"kind": "mfa"}, at=now())) == []
    # The address tried is who a failed sign-in was.
    mine = rows(build_report("attempts", {"person": requester.email[:5]}, at=now()))
    assert [row["kind"] for row in mine] == ["Failed sign-ins"]


def test_refused_single_sign_ons_count_as_failed_sign_ins(requester):
    from audit.services import record

    record(
        actor=None,
        action="auth.sso.refused",
        data={"provider": "corp", "reason": "unknown_person", "email": "mallory@example.com"},
    )
    report = build_report("attempts", {"person": "mallory"}, at=now() + timedelta(milliseconds=1))
    (row,) = rows(report)
    assert row["kind"] == "Failed sign-ins"
    assert "unknown_person" in row["reason"]
