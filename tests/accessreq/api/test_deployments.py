"""POST /api/v1/deployments and GET /api/v1/deployments/{id}: refusals at creation, routing by
the environment's policy (owners never approve), the authorization check tied to the approved
commit, expiry by the database clock, 404 across accounts, and the signed callback received by
a real local HTTP server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.db.models import F
from django.test import Client

from accessreq.connectors.webhook import verify
from accessreq.errors import NotAllowed, StepUpRequired
from accessreq.models import ApproverRule, DeploymentApproval, DeploymentAssignment
from accessreq.services.deployments import deployment_approve, deployment_deny, deployments_expire
from audit.models import AuditEvent
from portal.models import User
from tests.accessreq.api.conftest import (
    Pipeline,
    api_get,
    api_post,
    make_service_account,
    minted,
)
from tests.accessreq.workflow_helpers import FRESH, STALE, direct_grant, make_policy
from tests.factories import UserFactory

SHA = "4f2a9c1e0b7d5a3c2e1f0a9b8c7d6e5f4a3b2c1d"
OTHER_SHA = "0" * 40
URL = "/api/v1/deployments"


@pytest.fixture
def releaser(db: None) -> User:
    return UserFactory(display_name="Rita Releaser", email="rita@example.com")


@pytest.fixture
def deploy(pipeline: Pipeline, releaser: User) -> Pipeline:
    """The pipeline's prod (high tier) entitlement routes to the system owners with step-up;
    the account's owner is a system owner too, and must never be asked."""
    policy = make_policy("Prod deploys", (ApproverRule.SYSTEM_OWNER, 1, True))
    entitlement = pipeline.entitlement
    entitlement.policy = policy
    entitlement.save()
    entitlement.system.owners.add(releaser, pipeline.owner)
    environment = entitlement.environment
    environment.requires_deployment_approval = True
    environment.save()
    return pipeline


def body(pipeline: Pipeline, **overrides: Any) -> dict[str, Any]:
    entitlement = pipeline.entitlement
    return {
        "system": entitlement.system.slug,
        "environment": entitlement.environment.slug,
        "commit_sha": SHA,
        "checks": {"tests": "passed", "scan": "passed", "lint": "failed"},
        "artifact_digest": "sha256:" + "ab" * 32,
        "links": [{"title": "CI run", "url": "https://ci.example.com/runs/812345"}],
        "repository": "acme/payments-service",
        "run_id": "812345",
        "stage": "deploy-prod",
        **overrides,
    }


def open_deployment(pipeline: Pipeline, token: str, **overrides: Any) -> Any:
    return api_post(Client(), URL, body(pipeline, **overrides), token=token)


def authorize(pipeline: Pipeline, token: str, sha: str | None = SHA) -> Any:
    entitlement = pipeline.entitlement
    context = {"run_id": "812345", "stage": "deploy-prod"}
    if sha:
        context["commit_sha"] = sha
    return api_post(
        Client(),
        "/api/v1/authorize",
        {
            "action": "deploy",
            "system": entitlement.system.slug,
            "environment": entitlement.environment.slug,
            "context": context,
        },
        token=token,
    )


def test_opening_routes_to_the_policy_approvers_but_never_the_owner(
    deploy: Pipeline, releaser: User
) -> None:
    response = open_deployment(deploy, minted(deploy).secret)

    assert response.status_code == 201, response.content
    answer = response.json()
    assert "callback_secret" not in answer
    deployment = answer["deployment"]
    assert deployment["state"] == "pending"
    assert deployment["commit_sha"] == SHA
    assert deployment["checks"]["tests"] == "passed"
    assigned = set(DeploymentAssignment.objects.values_list("principal", flat=True))
    assert assigned == {releaser.pk}  # the owner is a system owner, but owns the pipeline
    event = AuditEvent.objects.get(sequence=answer["audit_event_id"])
    assert event.action == "deployment.requested"
    assert event.pipeline["commit_sha"] == SHA and event.pipeline["stage"] == "deploy-prod"
    assert event.data["environment"] == deploy.entitlement.environment.slug
    with pytest.raises(NotAllowed):
        deployment_approve(actor=deploy.owner, deployment_id=deployment["id"], mfa=FRESH)


@pytest.mark.parametrize(
    ("overrides", "status", "code"),
    [
        ({"checks": {"tests": "passed"}}, 400, "missing_check"),
        ({"checks": {"tests": "failed", "scan": "passed"}}, 400, "check_failed"),
        ({"commit_sha": "4f2a9c1"}, 400, "invalid_request"),
        ({"checks": {"tests": "great"}}, 400, "invalid_request"),
        ({"callback_url": "http://ci.example.com/hook"}, 400, "invalid_callback_url"),
        ({"environment": "staging"}, 403, "scope_not_held"),
        ({"action": "rollback"}, 403, "scope_not_held"),
    ],
)
def test_refused_at_creation_with_a_code(
    deploy: Pipeline, overrides: dict[str, Any], status: int, code: str
) -> None:
    response = open_deployment(deploy, minted(deploy).secret, **overrides)

    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code
    assert not DeploymentApproval.objects.exists()
    if code != "invalid_request":
        refused = AuditEvent.objects.get(action="deployment.refused")
        assert refused.data["code"] == code


def test_low_tier_needs_no_checks_and_a_second_pending_one_is_409(
    pipeline: Pipeline, security_admin: User
) -> None:
    # Low tier: the entitlement owner (who owns the account, so is excluded) or the manager
    # (a service account has none); the security admins are the fallback.
    environment = pipeline.entitlement.environment
    environment.risk_tier = "low"
    environment.save()
    token = minted(pipeline).secret

    assert open_deployment(pipeline, token, checks={}).status_code == 201
    assert set(DeploymentAssignment.objects.values_list("principal", flat=True)) == {
        security_admin.pk
    }
    first = DeploymentApproval.objects.get()
    again = open_deployment(pipeline, token, checks={})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "deployment_pending"
    # The answer names the one waiting, so a retried pipeline step can poll it.
    assert again.json()["deployment_id"] == first.pk
    assert f"/api/v1/deployments/{first.pk}" in again.json()["error"]["message"]
    assert DeploymentApproval.objects.count() == 1


@pytest.mark.parametrize(
    ("hosts", "url", "allowed"),
    [
        ([], "https://ci.example.com/hook", False),
        (["ci.example.com"], "https://ci.example.com/hook", True),
        (["ci.example.com"], "https://CI.example.com:8443/hook", True),
        (["ci.example.com"], "https://ci.example.com.attacker.io/hook", False),
        (["*.ci.example.com"], "https://hooks.ci.example.com/x", True),
        (["*.ci.example.com"], "https://evilci.example.com/x", False),
        (["ci.example.com"], "https://metadata.internal/latest", False),
    ],
)
def test_callbacks_go_only_to_listed_hosts(
    deploy: Pipeline, settings: Any, hosts: list[str], url: str, allowed: bool
) -> None:
    settings.DEPLOYMENT_CALLBACK_HOSTS = hosts
    response = open_deployment(deploy, minted(deploy).secret, callback_url=url)
    if allowed:
        assert response.status_code == 201, response.content
        assert response.json()["callback_secret"]
        return
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "callback_host_not_allowed"
    assert "DEPLOYMENT_CALLBACK_HOSTS" in response.json()["error"]["message"]
    assert not DeploymentApproval.objects.exists()


def test_nobody_to_approve_is_409(pipeline: Pipeline) -> None:
    response = open_deployment(pipeline, minted(pipeline).secret)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "no_approvers"


def test_the_service_account_page_lists_its_deployments_with_state_and_approvers(
    deploy: Pipeline, releaser: User, owner: User, verified_client: Any
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    token = minted(deploy).secret
    first = open_deployment(deploy, token).json()["deployment"]["id"]
    other = make_service_account("ledger-deployer", owner)
    direct_grant(other, deploy.entitlement)
    other_pipeline = Pipeline(other, owner, deploy.entitlement, deploy.rule)
    hidden = open_deployment(other_pipeline, minted(other_pipeline).secret, commit_sha="b" * 40)
    assert hidden.status_code == 201
    client = verified_client(deploy.owner)
    page_url = f"/service-accounts/{deploy.account.pk}/"

    page = client.get(page_url).content.decode()
    assert SHA[:12] in page and "b" * 12 not in page  # only this account's
    assert "Pending" in page and "stage 1 of 1" in page and "nobody yet" in page

    deployment_approve(actor=releaser, deployment_id=first, comment="ok", mfa=FRESH)
    for n in range(3):  # more rows cost no more queries
        open_deployment(deploy, token, commit_sha=f"{n}" * 40)
    with CaptureQueriesContext(connection) as few:
        client.get(page_url)
    for n in range(3, 9):
        open_deployment(deploy, token, commit_sha=f"{n}" * 40)
    with CaptureQueriesContext(connection) as many:
        page = client.get(page_url).content.decode()
    assert "Approved" in page and "Rita Releaser" in page
    assert len(many.captured_queries) == len(few.captured_queries)


def test_another_accounts_deployment_is_404(deploy: Pipeline, owner: User) -> None:
    created = open_deployment(deploy, minted(deploy).secret).json()["deployment"]
    other = make_service_account("ledger-deployer", owner)
    direct_grant(other, deploy.entitlement)
    other_token = minted(Pipeline(other, owner, deploy.entitlement, deploy.rule)).secret

    assert api_get(Client(), f"{URL}/{created['id']}", token=other_token).status_code == 404
    mine = api_get(Client(), f"{URL}/{created['id']}", token=minted(deploy).secret)
    assert mine.status_code == 200 and mine.json()["deployment"]["id"] == created["id"]
    assert api_get(Client(), f"{URL}/{created['id']}").status_code == 401


def test_authorize_needs_the_approved_commit_and_the_approval_is_used_by_one_token(
    deploy: Pipeline, releaser: User
) -> None:
    token = minted(deploy).secret
    deployment_id = open_deployment(deploy, token).json()["deployment"]["id"]

    refused = authorize(deploy, token)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "deployment_pending"
    assert authorize(deploy, token, sha=None).json()["error"]["code"] == (
        "deployment_approval_required"
    )

    with pytest.raises(StepUpRequired):
        deployment_approve(actor=releaser, deployment_id=deployment_id, mfa=STALE)
    deployment_approve(actor=releaser, deployment_id=deployment_id, comment="ok", mfa=FRESH)
    polled = api_get(Client(), f"{URL}/{deployment_id}", token=token).json()["deployment"]
    assert polled["state"] == "approved"
    assert polled["approvers"][0]["name"] == str(releaser)

    assert authorize(deploy, token, sha=OTHER_SHA).json()["error"]["code"] == (
        "deployment_approval_required"
    )
    allowed = authorize(deploy, token)
    assert allowed.status_code == 200, allowed.content
    assert [r["code"] for r in allowed.json()["reasons"]] == ["grant_active", "deployment_approved"]
    event = AuditEvent.objects.get(sequence=allowed.json()["audit_event_id"])
    assert event.action == "api.authorize.allowed"
    assert event.pipeline["commit_sha"] == SHA
    assert event.data["deployment_id"] == deployment_id
    assert event.data["approvers"] == [str(releaser)]
    used = AuditEvent.objects.get(action="deployment.used")
    assert used.data["approvers"][0]["name"] == str(releaser)
    assert DeploymentApproval.objects.get().state == "used"

    # The same token may ask again (a retried step); another token may not use it.
    assert authorize(deploy, token).status_code == 200
    second = authorize(deploy, minted(deploy, name="other").secret)
    assert second.status_code == 403
    assert second.json()["error"]["code"] == "deployment_used"
    approved = AuditEvent.objects.get(action="deployment.approved")
    assert approved.data["approvers"][0]["name"] == str(releaser)
    assert approved.pipeline["commit_sha"] == SHA


def test_environments_without_the_requirement_authorize_as_before(pipeline: Pipeline) -> None:
    response = authorize(pipeline, minted(pipeline).secret)
    assert response.status_code == 200
    assert [r["code"] for r in response.json()["reasons"]] == ["grant_active"]


def test_an_approval_expires_by_the_database_clock(deploy: Pipeline, releaser: User) -> None:
    token = minted(deploy).secret
    deployment_id = open_deployment(deploy, token).json()["deployment"]["id"]
    deployment_approve(actor=releaser, deployment_id=deployment_id, mfa=FRESH)
    DeploymentApproval.objects.filter(pk=deployment_id).update(
        decided_at=F("decided_at") - timedelta(minutes=61),
        expires_at=F("expires_at") - timedelta(minutes=61),
    )

    # Nothing has swept it yet: the clock decides.
    assert DeploymentApproval.objects.get().state == "approved"
    assert authorize(deploy, token).json()["error"]["code"] == "deployment_expired"
    polled = api_get(Client(), f"{URL}/{deployment_id}", token=token).json()["deployment"]
    assert polled["state"] == "expired"

    assert deployments_expire() == 1
    assert deployments_expire() == 0
    assert DeploymentApproval.objects.get().state == "expired"
    assert AuditEvent.objects.filter(action="deployment.expired").count() == 1


def test_a_pending_one_past_its_timeout_can_no_longer_be_approved(
    deploy: Pipeline, releaser: User
) -> None:
    deployment_id = open_deployment(deploy, minted(deploy).secret).json()["deployment"]["id"]
    DeploymentApproval.objects.filter(pk=deployment_id).update(
        timeout_at=F("created_at") - timedelta(seconds=1)
    )
    with pytest.raises(Exception, match="expired"):
        deployment_approve(actor=releaser, deployment_id=deployment_id, mfa=FRESH)


# --- The signed callback ------------------------------------------------------------------------


@dataclass
class Receiver:
    url: str
    statuses: list[int]
    received: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real HTTP server that answers 500 once, then 200, and keeps what it got."""
    state = Receiver(url="", statuses=[500, 200])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            length = int(self.headers["Content-Length"])
            state.received.append({"headers": dict(self.headers), "body": self.rfile.read(length)})
            self.send_response(state.statuses.pop(0) if state.statuses else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/gatehouse-callback"
    yield state
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.mark.parametrize("decision", ["approve", "deny"])
def test_the_decision_is_posted_signed_to_the_callback(
    deploy: Pipeline,
    releaser: User,
    receiver: Receiver,
    decision: str,
    django_capture_on_commit_callbacks: Any,
) -> None:
    answer = open_deployment(deploy, minted(deploy).secret, callback_url=receiver.url).json()
    secret = answer["callback_secret"]
    deployment_id = answer["deployment"]["id"]
    assert secret not in json.dumps(AuditEvent.objects.get(action="deployment.requested").data)

    with django_capture_on_commit_callbacks(execute=True):
        if decision == "approve":
            deployment_approve(actor=releaser, deployment_id=deployment_id, mfa=FRESH)
        else:
            deployment_deny(actor=releaser, deployment_id=deployment_id, comment="Freeze week")

    assert len(receiver.received) == 2  # the first attempt got a 500 and was retried
    last = receiver.received[-1]
    headers = last["headers"]
    assert verify(
        secret, headers["X-Gatehouse-Timestamp"], last["body"], headers["X-Gatehouse-Signature"]
    )
    assert not verify(
        "wrong", headers["X-Gatehouse-Timestamp"], last["body"], headers["X-Gatehouse-Signature"]
    )
    state = "approved" if decision == "approve" else "denied"
    assert headers["X-Gatehouse-Event"] == f"deployment.{state}"
    assert (
        headers["X-Gatehouse-Delivery"] == receiver.received[0]["headers"]["X-Gatehouse-Delivery"]
    )
    payload = json.loads(last["body"])
    assert payload["deployment"]["state"] == state
    assert payload["deployment"]["commit_sha"] == SHA
    if decision == "deny":
        assert payload["deployment"]["comment"] == "Freeze week"
    stored = DeploymentApproval.objects.get()
    assert stored.callback_delivered_at is not None and stored.callback_attempts == 2


def test_a_delegate_decides_for_the_approver_away_and_nobody_decides_twice(
    deploy: Pipeline, releaser: User
) -> None:
    """Two system owners must approve; Rita is away and Dev stands in for her. Dev sees the
    deployment (marked for Rita) and gets her email; his approval counts for Rita, who cannot
    then approve as well; the ledger names both; the second owner completes it."""
    from accessreq.deployment_inbox import deployment_rows
    from accessreq.models import Notification
    from accessreq.services.common import now
    from accessreq.services.delegation import delegation_cancel, delegation_create

    second = UserFactory(display_name="Sam Second", email="sam@example.com")
    dev = UserFactory(display_name="Dev Delegate", email="dev@example.com")
    entitlement = deploy.entitlement
    entitlement.policy = make_policy("Two owners", (ApproverRule.SYSTEM_OWNER, 2, True))
    entitlement.save()
    entitlement.system.owners.add(second)
    clock = now()
    away = delegation_create(
        actor=releaser, delegate=dev, starts_at=clock, ends_at=clock + timedelta(days=3)
    )

    deployment_id = open_deployment(deploy, minted(deploy).secret).json()["deployment"]["id"]
    emailed = Notification.objects.filter(key__startswith=f"deployment:{deployment_id}:")
    assert set(emailed.values_list("recipient__email", flat=True)) == {
        "rita@example.com",
        "sam@example.com",
        "dev@example.com",
    }
    (row,) = deployment_rows(user=dev, fresh=True)
    assert row.deployment.pk == deployment_id and row.on_behalf_of == releaser
    assert deployment_rows(user=releaser, fresh=True)[0].on_behalf_of is None

    deployment_approve(actor=dev, deployment_id=deployment_id, comment="for Rita", mfa=FRESH)
    decision = DeploymentApproval.objects.get(pk=deployment_id).decisions.get()
    assert decision.approver == dev and decision.on_behalf_of == releaser
    given = AuditEvent.objects.filter(action="deployment.approval_given").get()
    assert given.actor_id == dev.pk and given.data["on_behalf_of_id"] == releaser.pk
    with pytest.raises(NotAllowed):  # Rita was stood in for at this deployment
        deployment_approve(actor=releaser, deployment_id=deployment_id, mfa=FRESH)
    assert not deployment_rows(user=releaser, fresh=True)
    assert not deployment_rows(user=dev, fresh=True)

    deployment_approve(actor=second, deployment_id=deployment_id, mfa=FRESH)
    approved = DeploymentApproval.objects.get(pk=deployment_id)
    assert approved.state == "approved"
    names = {
        a["name"]: a.get("on_behalf_of")
        for a in AuditEvent.objects.get(action="deployment.approved").data["approvers"]
    }
    assert names == {"Dev Delegate": "Rita Releaser", "Sam Second": None}

    # Once the delegation ends, the delegate sees nothing and may not decide.
    delegation_cancel(actor=releaser, delegation_id=away.pk)
    later = open_deployment(deploy, minted(deploy).secret, commit_sha="e" * 40).json()
    assert not deployment_rows(user=dev, fresh=True)
    with pytest.raises(NotAllowed):
        deployment_approve(actor=dev, deployment_id=later["deployment"]["id"], mfa=FRESH)


def test_a_deployment_waiting_for_an_approver_who_leaves_goes_to_the_security_admins(
    deploy: Pipeline, releaser: User, security_admin: User
) -> None:
    from accessreq.services.lifecycle import person_leave

    token = minted(deploy).secret
    opened = open_deployment(deploy, token)
    assert opened.status_code == 201, opened.content
    deployment = DeploymentApproval.objects.get(pk=opened.json()["deployment"]["id"])
    assert list(deployment.assignments.values_list("principal", flat=True)) == [releaser.pk]

    person_leave(user=releaser, actor=security_admin, reason="left", source="scim:okta")

    assert list(deployment.assignments.values_list("principal", flat=True)) == [security_admin.pk]
    event = AuditEvent.objects.get(action="deployment.rerouted")
    assert event.data["removed"] == [str(releaser)] and event.data["added"] == [str(security_admin)]
    assert AuditEvent.objects.get(action="person.left").data["requests_rerouted"] == 1
    with pytest.raises(NotAllowed):
        deployment_approve(actor=releaser, deployment_id=deployment.pk, mfa=FRESH)
    deployment_approve(actor=security_admin, deployment_id=deployment.pk, mfa=FRESH)
    deployment.refresh_from_db()
    assert deployment.state == "approved"


def test_a_stage_waiting_too_long_is_escalated_to_the_security_admins_once(
    settings, deploy: Pipeline, releaser: User, security_admin: User
) -> None:
    from accessreq.services.deployments import deployments_escalate

    settings.DEPLOYMENT_ESCALATE_AFTER_MINUTES = 60
    opened = open_deployment(deploy, minted(deploy).secret)
    deployment = DeploymentApproval.objects.get(pk=opened.json()["deployment"]["id"])
    assert deployments_escalate() == 0  # not waited long enough

    DeploymentApproval.objects.filter(pk=deployment.pk).update(
        stage_opened_at=F("stage_opened_at") - timedelta(minutes=61)
    )
    assert deployments_escalate() == 1
    assert deployments_escalate() == 0  # once per stage
    assigned = dict(deployment.assignments.values_list("principal", "reason"))
    assert assigned == {releaser.pk: "rule", security_admin.pk: "escalation"}
    event = AuditEvent.objects.get(action="deployment.escalated")
    assert event.data["added"] == [str(security_admin)]
    assert event.pipeline["commit_sha"] == SHA
    deployment_approve(actor=security_admin, deployment_id=deployment.pk, mfa=FRESH)
    deployment.refresh_from_db()
    assert deployment.state == "approved"
