"""POST /api/v1/authorize: allow or deny by holds_scope (database clock), with reasons and the
ledger event that records the decision and the pipeline context."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.db.models import F
from django.test import Client

from accessreq.models import Grant
from audit.models import AuditEvent
from tests.accessreq.api.conftest import (
    Pipeline,
    SigningKey,
    api_post,
    github_claims,
    minted,
    sign,
)
from tests.accessreq.workflow_helpers import direct_grant, make_entitlement
from tests.factories import EntitlementFactory, EnvironmentFactory, SystemFactory

URL = "/api/v1/authorize"
CONTEXT = {
    "commit_sha": "4f2a9c1e0b7d5a3c2e1f0a9b8c7d6e5f4a3b2c1d",
    "run_id": "812345",
    "stage": "deploy-prod",
    "repository": "acme/payments-service",
}


def ask(pipeline: Pipeline, token: str, **overrides: Any) -> Any:
    entitlement = pipeline.entitlement
    body = {
        "action": "deploy",
        "system": entitlement.system.slug,
        "environment": entitlement.environment.slug,
        "context": CONTEXT,
        **overrides,
    }
    return api_post(Client(), URL, body, token=token)


def exchanged(rsa_key: SigningKey) -> str:
    response = api_post(Client(), "/api/v1/token", {"id_token": sign(github_claims(), rsa_key)})
    assert response.status_code == 201, response.content
    return str(response.json()["access_token"])


def test_held_scope_is_allowed_and_recorded_with_the_pipeline_context(
    pipeline: Pipeline, rsa_key: SigningKey
) -> None:
    response = ask(pipeline, exchanged(rsa_key))

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["decision"] == "allow" and body["allowed"] is True
    assert body["reasons"][0]["code"] == "grant_active"
    event = AuditEvent.objects.get(sequence=body["audit_event_id"])
    assert event.action == "api.authorize.allowed"
    assert event.actor_id == pipeline.account.pk and event.actor_kind == "service"
    assert event.pipeline == CONTEXT
    assert event.data["system"] == pipeline.entitlement.system.slug


def test_scope_not_held_is_403_with_the_reason(pipeline: Pipeline) -> None:
    issued = minted(pipeline)
    response = ask(pipeline, issued.secret, action="rollback")

    assert response.status_code == 403
    body = response.json()
    assert body["decision"] == "deny"
    assert body["error"]["code"] == "scope_not_held"
    assert "does not hold rollback" in body["reasons"][0]["message"]
    event = AuditEvent.objects.get(sequence=body["audit_event_id"])
    assert event.action == "api.authorize.denied"
    assert event.data["reasons"] == ["scope_not_held"]


def test_a_grant_past_its_end_is_denied_before_the_expiry_job_runs(pipeline: Pipeline) -> None:
    issued = minted(pipeline)
    grant = Grant.objects.get(beneficiary=pipeline.account)
    Grant.objects.filter(pk=grant.pk).update(
        starts_at=F("starts_at") - timedelta(hours=9),
        expires_at=F("expires_at") - timedelta(hours=9),
    )
    grant.refresh_from_db()
    assert grant.state == "active"  # the job has not caught up, the clock decides

    response = ask(pipeline, issued.secret)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "scope_not_held"


def test_an_exchanged_token_covers_only_what_was_held_at_exchange(
    pipeline: Pipeline, rsa_key: SigningKey
) -> None:
    token = exchanged(rsa_key)
    later = make_entitlement(tier="high", system=pipeline.entitlement.system, scopes=["rollback"])
    direct_grant(pipeline.account, later)

    response = ask(pipeline, token, action="rollback", environment=later.environment.slug)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "token_scope"
    # A minted token follows the account's grants as they are now.
    assert ask(pipeline, minted(pipeline).secret, action="rollback").status_code == 200


def test_decisions_for_other_systems_are_denied(pipeline: Pipeline) -> None:
    response = ask(pipeline, minted(pipeline).secret, system="ledger-service")
    assert response.status_code == 403


def test_bad_input_is_400_and_records_nothing(pipeline: Pipeline) -> None:
    token = minted(pipeline).secret
    before = AuditEvent.objects.count()
    for overrides in (
        {"action": "deploy prod"},
        {"context": {"commit_sha": "not-a-sha"}},
        {"context": {"unknown": "x"}},
        {"system": ""},
    ):
        response = ask(pipeline, token, **overrides)
        assert response.status_code == 400, overrides
        assert response.json()["error"]["code"] == "invalid_request"
    assert AuditEvent.objects.count() == before


@pytest.mark.django_db(transaction=True)
def test_parallel_decisions_share_ledger_commits_but_each_has_its_own_event(
    pipeline: Pipeline,
) -> None:
    """Outside a transaction (as under gunicorn) decisions go through the group writer: each
    answer names an event that is already committed, and the chain stays whole."""
    from audit import group
    from audit.verify import ledger_verify

    issued = minted(pipeline)
    answers: list[tuple[int, int]] = []
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(10):
                action = "deploy" if (n + i) % 3 else "rollback"  # some allowed, some denied
                response = ask(pipeline, issued.secret, action=action)
                answers.append((response.status_code, response.json()["audit_event_id"]))
        except BaseException as exc:  # asserted below
            errors.append(exc)
        finally:
            connection.close()

    before = group._writer.groups
    try:
        threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert errors == []
        assert group._writer.groups > before  # the writer thread committed them
    finally:
        group._writer.stop()  # closes its connection before the database is flushed
    events = {
        e.sequence: e.action for e in AuditEvent.objects.filter(action__startswith="api.authorize.")
    }
    assert len(answers) == 60 and len({seq for _, seq in answers}) == 60
    for status, sequence in answers:
        assert events[sequence] == (
            "api.authorize.allowed" if status == 200 else "api.authorize.denied"
        )
    assert sorted(status for status, _ in answers).count(403) == 20
    assert ledger_verify().ok


def test_a_scope_of_the_longest_slugs_is_decided_and_recorded(pipeline: Pipeline) -> None:
    # 50 + 1 + 100 + 1 + 50 characters: the decision's audit event targets the whole triple
    # (PostgreSQL refused a target id over 64 characters, answering 500).
    action, system, environment = "a" * 50, "s" * 100, "e" * 50
    entitlement = EntitlementFactory(
        system=SystemFactory(slug=system),
        environment=EnvironmentFactory(slug=environment),
        scopes=[action],
    )
    direct_grant(pipeline.account, entitlement)
    token = minted(pipeline).secret
    body = {"action": action, "system": system, "environment": environment}

    response = api_post(Client(), URL, body, token=token)

    assert response.status_code == 200, response.content
    event = AuditEvent.objects.get(sequence=response.json()["audit_event_id"])
    assert event.target_id == f"{action}:{system}:{environment}"
    # Longer scope or environment slugs cannot exist, and are refused as such.
    for name in ("action", "environment"):
        response = api_post(Client(), URL, {**body, name: "x" * 51}, token=token)
        assert response.status_code == 400, name


# --- Use of the grant that allowed it ----------------------------------------------------------


def test_an_allowed_decision_stamps_its_grant_as_used_at_most_hourly(pipeline: Pipeline) -> None:
    from accessreq.reports.dormant import Dormant
    from accessreq.services import grants
    from accessreq.services.common import now
    from accessreq.services.reports import build_report

    issued = minted(pipeline)
    grant = Grant.objects.get(beneficiary=pipeline.account)
    # Held for two months and never used: dormant.
    clock = now()
    Grant.objects.filter(pk=grant.pk).update(
        starts_at=clock - timedelta(days=60),
        created_at=clock - timedelta(days=60),
        expires_at=clock + timedelta(days=10),
    )

    def dormant() -> set[int]:
        report = build_report("dormant", {}, at=now())
        assert isinstance(report, Dormant)
        return {cells[3] for cells in report.rows()}

    assert dormant() == {grant.pk}

    # Refused: nothing is stamped.
    assert ask(pipeline, issued.secret, action="rollback").status_code == 403
    assert not Grant.objects.filter(last_used_at__isnull=False).exists()

    assert ask(pipeline, issued.secret).status_code == 200
    grant.refresh_from_db()
    first = grant.last_used_at
    assert first is not None and abs(first - now()) < timedelta(seconds=5)
    assert dormant() == set()

    # Within the hour the stamp stays: the process remembers it, and so does the database's
    # condition for another process that doesn't.
    assert ask(pipeline, issued.secret).status_code == 200
    grant.refresh_from_db()
    assert grant.last_used_at == first
    grants._used_recently.clear()
    assert ask(pipeline, issued.secret).status_code == 200
    grant.refresh_from_db()
    assert grant.last_used_at == first

    # A use more than an hour after the last stamp stamps again.
    Grant.objects.filter(pk=grant.pk).update(last_used_at=first - timedelta(hours=2))
    grants._used_recently.clear()
    assert ask(pipeline, issued.secret).status_code == 200
    grant.refresh_from_db()
    assert grant.last_used_at is not None and grant.last_used_at >= first
    # A usage stamp, not a state change: kept out of the grant's history (a later tracked save
    # can't look like it changed the stamp), and no audit event of its own.
    assert "last_used_at" not in {field.name for field in Grant.history.model._meta.fields}
    assert not AuditEvent.objects.filter(
        target_type="accessreq.grant", target_id=str(grant.pk)
    ).exists()


def test_repeat_uses_within_the_hour_do_not_reach_the_database(
    pipeline: Pipeline, django_assert_num_queries: Any
) -> None:
    from accessreq.services.grants import grant_touch

    grant = Grant.objects.get(beneficiary=pipeline.account)
    with django_assert_num_queries(1):
        grant_touch(grant.pk)
    with django_assert_num_queries(0):
        grant_touch(grant.pk)
        grant_touch(grant.pk)
    grant.refresh_from_db()
    assert grant.last_used_at is not None


def test_a_decision_the_deployment_gate_refuses_stamps_nothing(pipeline: Pipeline) -> None:
    # The grant holds the scope, but this environment also needs an approved deployment.
    environment = pipeline.entitlement.environment
    environment.requires_deployment_approval = True
    environment.save()
    response = ask(pipeline, minted(pipeline).secret)
    assert response.status_code == 403
    assert [reason["code"] for reason in response.json()["reasons"]][1] == "grant_active"
    assert not Grant.objects.filter(last_used_at__isnull=False).exists()
