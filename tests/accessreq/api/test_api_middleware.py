"""API endpoints take the short way through the middleware (portal.middleware.ApiMiddleware):
security headers, request id and model history, but no sessions, CSRF, sign-in gates or page CSP.
Everything else, the API's HTML docs included, keeps the whole stack."""

from __future__ import annotations

from typing import Any

from django.test import Client

from accessreq.models import ApiToken
from tests.accessreq.api.conftest import Pipeline, api_get, api_post, minted


def test_an_endpoint_answers_with_security_headers_and_request_id_but_no_session(
    pipeline: Pipeline, verified_client: Any
) -> None:
    issued = minted(pipeline)
    # A signed-in, verified browser session alongside: the API neither reads nor renews it.
    browser = verified_client(pipeline.owner)
    response = api_get(browser, "/api/v1/me", token=issued.secret)
    assert response.status_code == 200
    assert response.json()["service_account"]["id"] == pipeline.account.pk
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert len(response["X-Request-ID"]) == 32
    assert "Cookie" not in response.get("Vary", "")
    assert not response.cookies
    # The pages' middleware was skipped: no page policy on a JSON answer.
    assert "Content-Security-Policy" not in response
    # Without a token the session's person is nobody here.
    anonymous = api_get(browser, "/api/v1/me")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "authentication_required"


def test_a_proxy_request_id_is_kept_and_unknown_paths_answer_json(pipeline: Pipeline) -> None:
    issued = minted(pipeline)
    response = Client().get(
        "/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {issued.secret}", HTTP_X_REQUEST_ID="ci-run-4711"
    )
    assert response["X-Request-ID"] == "ci-run-4711"
    missing = Client().get("/api/v1/no-such-thing")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert missing["X-Content-Type-Options"] == "nosniff"


def test_changes_through_the_api_are_attributed_in_model_history(pipeline: Pipeline) -> None:
    issued = minted(pipeline)
    response = api_post(
        Client(), f"/api/v1/tokens/{issued.token.pk}/revoke", {"reason": "Job done"}, issued.secret
    )
    assert response.status_code == 200
    latest = ApiToken.history.filter(id=issued.token.pk).latest("history_date")
    assert latest.revoked_at is not None
    assert latest.history_user_id == pipeline.account.pk


def test_the_html_docs_page_keeps_the_pages_middleware(db: None) -> None:
    response = Client().get("/api/v1/docs")
    assert response.status_code == 200
    assert "Content-Security-Policy" in response
    assert response["X-Request-ID"]
