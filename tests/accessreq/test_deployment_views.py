"""Deployment approvals in the approvals inbox: who sees them, approve with an inline step-up
code, deny with a comment, and a query count that does not grow with the deployments."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accessreq.models import ApproverRule, DeploymentApproval
from accessreq.services.deployments import deployment_request
from accessreq.services.tokens import token_issue
from audit.models import AuditEvent
from portal.models import TOTPDevice, User
from tests.accessreq.api.conftest import make_service_account
from tests.accessreq.workflow_helpers import FRESH, direct_grant, make_entitlement, make_policy
from tests.conftest import current_code
from tests.factories import UserFactory

SHA = "4f2a9c1e0b7d5a3c2e1f0a9b8c7d6e5f4a3b2c1d"


@pytest.fixture
def releaser(db: None) -> User:
    return UserFactory(display_name="Rita Releaser", email="rita@example.com")


@pytest.fixture
def setup(owner: User, releaser: User) -> dict[str, Any]:
    policy = make_policy("Prod deploys", (ApproverRule.SYSTEM_OWNER, 1, True))
    entitlement = make_entitlement(
        tier="high", owners=[owner], system_owners=[releaser, owner], policy=policy
    )
    account = make_service_account("payments-deployer", owner)
    direct_grant(account, entitlement)
    token = token_issue(
        actor=owner, service_account=account, kind="minted", name="deploys", mfa=FRESH
    ).token
    return {"entitlement": entitlement, "account": account, "token": token}


def open_one(setup: dict[str, Any], sha: str = SHA) -> DeploymentApproval:
    entitlement = setup["entitlement"]
    return deployment_request(
        token=setup["token"],
        system=entitlement.system.slug,
        environment=entitlement.environment.slug,
        commit_sha=sha,
        checks={"tests": "passed", "scan": "passed"},
        links=[{"title": "Run 812345", "url": "https://ci.example.com/runs/812345"}],
        repository="acme/payments-service",
        run_id="812345",
        stage="deploy-prod",
    ).deployment


def stale(client: Client) -> None:
    session = client.session
    session["mfa_verified_at"] = time.time() - 3600
    session.save()


def decide(client: Client, deployment: DeploymentApproval, **data: str) -> Any:
    return client.post(f"/approvals/deployments/{deployment.pk}/decide/", data, follow=True)


def test_anonymous_is_sent_to_sign_in(setup: dict[str, Any], client: Client) -> None:
    deployment = open_one(setup)
    response = client.post(f"/approvals/deployments/{deployment.pk}/decide/", {"action": "deny"})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert DeploymentApproval.objects.get().state == "pending"


@pytest.mark.parametrize("persona", ["outsider", "owner"])
def test_outsider_and_the_accounts_owner_neither_see_nor_decide(
    setup: dict[str, Any],
    verified_client: Callable[[User], Client],
    persona: str,
    request: pytest.FixtureRequest,
) -> None:
    deployment = open_one(setup)
    client = verified_client(request.getfixturevalue(persona))

    page = client.get("/approvals/")
    assert page.status_code == 200
    assert SHA not in page.content.decode()
    response = client.post(f"/approvals/deployments/{deployment.pk}/decide/", {"action": "approve"})
    assert response.status_code == 404
    assert DeploymentApproval.objects.get().state == "pending"


def test_approver_sees_commit_checks_and_links_and_approves_with_a_code(
    setup: dict[str, Any], releaser: User, verified_client: Callable[[User], Client]
) -> None:
    deployment = open_one(setup)
    client = verified_client(releaser)
    stale(client)

    page = client.get("/approvals/").content.decode()
    assert "Deployments waiting for you (1)" in page
    assert SHA in page and "acme/payments-service" in page
    assert 'tests</strong>: <span class="check check--passed">passed' in page
    assert 'href="https://ci.example.com/runs/812345"' in page
    assert "Approve deployment with code" in page

    refused = decide(client, deployment, action="approve")
    assert "needs a fresh second factor" in refused.content.decode()
    assert DeploymentApproval.objects.get().state == "pending"

    device = TOTPDevice.objects.get(user=releaser)
    approved = decide(client, deployment, action="approve", code=current_code(device))
    assert "the pipeline may deploy this commit" in approved.content.decode()
    assert SHA not in approved.content.decode()  # no longer waiting
    stored = DeploymentApproval.objects.get()
    assert stored.state == "approved" and stored.expires_at is not None
    event = AuditEvent.objects.get(action="deployment.approved")
    assert event.actor_id == releaser.pk
    assert event.pipeline["commit_sha"] == SHA
    assert event.data["approvers"][0]["mfa_method"] == "totp"


def test_deny_needs_a_comment(
    setup: dict[str, Any], releaser: User, verified_client: Callable[[User], Client]
) -> None:
    deployment = open_one(setup)
    client = verified_client(releaser)

    empty = decide(client, deployment, action="deny", comment="")
    assert "Say why you deny" in empty.content.decode()
    assert DeploymentApproval.objects.get().state == "pending"

    denied = decide(client, deployment, action="deny", comment="Change freeze this week")
    assert "The pipeline has been told why" in denied.content.decode()
    assert DeploymentApproval.objects.get().state == "denied"
    event = AuditEvent.objects.get(action="deployment.denied")
    assert event.data["comment"] == "Change freeze this week"


def test_inbox_query_count_does_not_grow_with_deployments(
    setup: dict[str, Any], releaser: User, verified_client: Callable[[User], Client]
) -> None:
    client = verified_client(releaser)
    open_one(setup)
    with CaptureQueriesContext(connection) as one:
        assert client.get("/approvals/").status_code == 200
    for n in range(1, 8):
        open_one(setup, sha=f"{n:040x}")
    with CaptureQueriesContext(connection) as many:
        page = client.get("/approvals/")
    assert "Deployments waiting for you (8)" in page.content.decode()
    assert len(many) == len(one)
