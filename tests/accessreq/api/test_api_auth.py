"""The API's frame: bearer tokens only, a session never acts, JSON errors, rate limits."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client

from accessreq.models import ApiToken
from accessreq.services.tokens import token_revoke
from audit.models import AuditEvent
from portal.models import User
from tests.accessreq.api.conftest import Pipeline, api_get, api_post, minted
from tests.conftest import password_login

AUTHORIZE = "/api/v1/authorize"
BODY = {"action": "deploy", "system": "x", "environment": "prod"}


def error_code(response: Any) -> str:
    assert response["Content-Type"] == "application/json"
    return str(response.json()["error"]["code"])


def test_no_token_is_401_with_a_bearer_challenge(db: None) -> None:
    response = api_post(Client(), AUTHORIZE, BODY)
    assert response.status_code == 401
    assert error_code(response) == "authentication_required"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_something_not_ours_is_invalid_token(db: None) -> None:
    response = api_post(Client(), AUTHORIZE, BODY, token="ghp_not-a-gatehouse-token")
    assert response.status_code == 401
    assert error_code(response) == "invalid_token"
    unknown = "gtm_" + "A" * 43
    assert error_code(api_post(Client(), AUTHORIZE, BODY, token=unknown)) == "invalid_token"


def test_a_verified_session_does_not_act_on_the_api(
    pipeline: Pipeline, verified_client: Callable[[User], Client]
) -> None:
    client = verified_client(pipeline.owner)
    client_csrf = Client(enforce_csrf_checks=True)
    client_csrf.cookies = client.cookies

    for each in (client, client_csrf):
        response = api_post(each, AUTHORIZE, BODY)
        # Not a CSRF 403 and not the owner's authority: nobody until a token says who.
        assert response.status_code == 401
        assert error_code(response) == "authentication_required"
    assert error_code(api_get(client, "/api/v1/me")) == "authentication_required"


def test_an_unverified_session_gets_json_not_the_mfa_page(pipeline: Pipeline) -> None:
    client = Client()
    password_login(client, pipeline.owner)  # password only, no second factor yet
    response = api_get(client, "/api/v1/me")
    assert response.status_code == 401
    assert error_code(response) == "authentication_required"


def test_the_api_never_redirects_to_sign_in(db: None) -> None:
    response = Client().get("/api/v1/tokens")
    assert response.status_code == 401


def test_expired_token_is_401_and_audited(pipeline: Pipeline) -> None:
    issued = minted(pipeline)
    ApiToken.objects.filter(pk=issued.token.pk).update(
        created_at=issued.token.created_at - timedelta(days=40),
        expires_at=issued.token.created_at - timedelta(seconds=1),
    )
    response = api_post(Client(), AUTHORIZE, BODY, token=issued.secret)
    assert response.status_code == 401
    assert error_code(response) == "token_expired"
    event = AuditEvent.objects.order_by("-sequence").first()
    assert event is not None and event.action == "api.token.refused"
    assert event.data["code"] == "token_expired"
    assert event.data["token_prefix"] == issued.secret[:12]

    # Replays within the minute are refused without flooding the ledger.
    api_post(Client(), AUTHORIZE, BODY, token=issued.secret)
    assert AuditEvent.objects.filter(action="api.token.refused").count() == 1


def test_revoked_token_is_401(pipeline: Pipeline) -> None:
    issued = minted(pipeline)
    token_revoke(actor=pipeline.owner, token_id=issued.token.pk, reason="leaked in a log")
    response = api_get(Client(), "/api/v1/me", token=issued.secret)
    assert response.status_code == 401
    assert error_code(response) == "token_revoked"


def test_token_of_a_deactivated_account_is_401(pipeline: Pipeline) -> None:
    issued = minted(pipeline)
    User.objects.filter(pk=pipeline.account.pk).update(is_active=False)
    response = api_get(Client(), "/api/v1/me", token=issued.secret)
    assert response.status_code == 401
    assert error_code(response) == "account_inactive"


@pytest.fixture(params=["locmem", "redis"])
def rate_cache(request: pytest.FixtureRequest, settings: Any) -> Iterator[Any]:
    """The rate limit on the tests' in-process cache and, when ``CACHE_URL`` names a Redis (CI's
    PostgreSQL run), on that Redis, whose path is a single INCR."""
    from django.core.cache import caches

    if request.param == "redis":
        url = os.environ.get("CACHE_URL", "")
        if not url.startswith("redis://"):
            pytest.skip("CACHE_URL names no Redis; CI's PostgreSQL run sets one")
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": url,
                "KEY_PREFIX": f"test-{os.getpid()}",
            }
        }
    caches["default"].clear()
    yield caches["default"]
    caches["default"].clear()


def test_requests_are_limited_per_token(pipeline: Pipeline, settings: Any, rate_cache: Any) -> None:
    settings.API_RATE_LIMIT_PER_MINUTE = 3
    first, second = minted(pipeline), minted(pipeline, name="other")
    for _ in range(3):
        assert api_get(Client(), "/api/v1/me", token=first.secret).status_code == 200
    limited = api_get(Client(), "/api/v1/me", token=first.secret)
    assert limited.status_code == 429
    assert error_code(limited) == "rate_limited"
    assert 0 < int(limited["Retry-After"]) <= 60
    # The other token has its own budget.
    assert api_get(Client(), "/api/v1/me", token=second.secret).status_code == 200


@pytest.mark.parametrize("rate_cache", ["redis"], indirect=True)
def test_rate_counters_on_redis_expire_after_their_window(
    pipeline: Pipeline, rate_cache: Any
) -> None:
    """On Redis the counter is one INCR; it must still expire, or counters pile up forever."""
    backend = rate_cache
    issued = minted(pipeline)
    assert api_get(Client(), "/api/v1/me", token=issued.secret).status_code == 200
    client = backend._cache.get_client(write=False)
    keys = client.keys(backend.make_key(f"gatehouse-api-rate:token:{issued.token.pk}:*"))
    assert len(keys) == 1
    assert 60 < client.ttl(keys[0]) <= 120
    assert int(client.get(keys[0])) == 1


def test_answers_are_never_cached(pipeline: Pipeline) -> None:
    issued = minted(pipeline)
    response = api_get(Client(), "/api/v1/me", token=issued.secret)
    assert response["Cache-Control"] == "no-store"
    assert response.json()["service_account"]["name"] == "payments-deployer"
    assert "digest" not in response.json()["token"]


@pytest.mark.parametrize("bad", ["\x00", "\ud800"], ids=["nul", "lone-surrogate"])
def test_text_no_database_stores_is_a_400_naming_the_field(pipeline: Pipeline, bad: str) -> None:
    # JSON's \u0000 and \ud800 escapes decode to text that PostgreSQL (NUL) and UTF-8 (an
    # unpaired surrogate: the ledger's hash input, both databases) refuse: a 400, not a 500.
    issued = minted(pipeline)
    body = {**BODY, "context": {"run_id": f"run{bad}"}}
    response = api_post(Client(), AUTHORIZE, body, token=issued.secret)
    assert response.status_code == 400, response.content
    assert error_code(response) == "invalid_request"
    assert response.json()["error"]["message"].startswith("context.run_id contains")
    assert not AuditEvent.objects.filter(action__startswith="api.authorize").exists()


def test_json_nested_too_deep_is_a_400(pipeline: Pipeline) -> None:
    issued = minted(pipeline)
    response = Client().post(
        AUTHORIZE,
        "[" * 100_000 + "]" * 100_000,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {issued.secret}",
    )
    assert response.status_code == 400
    assert error_code(response) == "invalid_json"


def test_unknown_api_paths_are_json_404s(db: None) -> None:
    for path in ("/api/v1/nope", "/api/v1/", "/api/v1/tokens/abc"):
        response = Client().get(path)
        assert response.status_code == 404, path
        assert error_code(response) == "not_found"


def test_use_is_noted_on_the_token(pipeline: Pipeline) -> None:
    issued = minted(pipeline)
    assert issued.token.last_used_at is None
    api_get(Client(), "/api/v1/me", token=issued.secret)
    issued.token.refresh_from_db()
    assert issued.token.last_used_at is not None
