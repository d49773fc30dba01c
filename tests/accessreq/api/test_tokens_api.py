"""The caller's tokens over the API: listed without secrets, another account's are 404."""

from __future__ import annotations

from django.test import Client

from accessreq.services.tokens import token_issue
from audit.models import AuditEvent
from tests.accessreq.api.conftest import Pipeline, api_get, api_post, make_service_account, minted
from tests.accessreq.workflow_helpers import FRESH


def test_an_account_lists_its_tokens_without_secrets(pipeline: Pipeline) -> None:
    first, second = minted(pipeline), minted(pipeline, name="second")
    response = api_get(Client(), "/api/v1/tokens", token=first.secret)

    assert response.status_code == 200
    tokens = response.json()["tokens"]
    assert [t["id"] for t in tokens] == [second.token.pk, first.token.pk]
    assert first.secret not in response.content.decode()
    assert tokens[0]["prefix"] == second.secret[:12]


def test_another_accounts_token_is_404(pipeline: Pipeline) -> None:
    other = make_service_account("reporting-bot", pipeline.owner)
    theirs = token_issue(
        actor=pipeline.owner, service_account=other, kind="minted", name="reports", mfa=FRESH
    )
    mine = minted(pipeline)

    assert (
        api_get(Client(), f"/api/v1/tokens/{theirs.token.pk}", token=mine.secret).status_code == 404
    )
    response = api_post(Client(), f"/api/v1/tokens/{theirs.token.pk}/revoke", {}, token=mine.secret)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert api_get(Client(), "/api/v1/me", token=theirs.secret).status_code == 200  # untouched
    listed = api_get(Client(), "/api/v1/tokens", token=mine.secret).json()["tokens"]
    assert theirs.token.pk not in [t["id"] for t in listed]


def test_a_job_revokes_its_own_token(pipeline: Pipeline) -> None:
    issued = minted(pipeline)
    response = api_post(
        Client(),
        f"/api/v1/tokens/{issued.token.pk}/revoke",
        {"reason": "job done"},
        token=issued.secret,
    )
    assert response.status_code == 200
    assert response.json()["token"]["state"] == "revoked"
    assert api_get(Client(), "/api/v1/me", token=issued.secret).status_code == 401


def test_revoke_needs_no_body(pipeline: Pipeline) -> None:
    # The document marks the body optional: a bare POST (curl -X POST) at a job's end revokes.
    issued = minted(pipeline)
    response = Client().generic(
        "POST",
        f"/api/v1/tokens/{issued.token.pk}/revoke",
        HTTP_AUTHORIZATION=f"Bearer {issued.secret}",
    )
    assert response.status_code == 200, response.content
    assert response.json()["token"]["state"] == "revoked"
    event = AuditEvent.objects.order_by("-sequence").first()
    assert event is not None and event.action == "api.token.revoked"
