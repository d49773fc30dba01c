"""POST /api/v1/token: CI ID tokens verified against the issuer's real JWKS on loopback, mapped
to a service account by trust rules; every issuance and refusal is in the ledger."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from django.test import Client
from jwt.algorithms import HMACAlgorithm

from accessreq.models import ApiToken, TokenKind, TrustRule
from audit.models import AuditEvent
from tests.accessreq.api.conftest import (
    REPOSITORY,
    JwksServer,
    Pipeline,
    SigningKey,
    api_post,
    github_claims,
    gitlab_claims,
    make_service_account,
    sign,
)

URL = "/api/v1/token"


def exchange(raw: str) -> Any:
    return api_post(Client(), URL, {"id_token": raw})


def refused(raw: str, status: int, code: str) -> dict[str, Any]:
    response = exchange(raw)
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error"]["code"] == code, body
    event = AuditEvent.objects.order_by("-sequence").first()
    assert event is not None and event.action == "api.token.exchange_refused"
    assert event.data["code"] == code
    assert raw not in json.dumps(event.data)  # the ID token itself is never recorded
    assert not ApiToken.objects.exists()
    return body


def test_github_token_is_exchanged_for_a_short_lived_token(
    pipeline: Pipeline, rsa_key: SigningKey
) -> None:
    response = exchange(sign(github_claims(), rsa_key))

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["access_token"].startswith("gtx_")
    assert body["expires_in"] == 15 * 60
    assert body["service_account"]["name"] == "payments-deployer"
    entitlement = pipeline.entitlement
    assert body["scopes"] == [
        {
            "action": "deploy",
            "system": entitlement.system.slug,
            "environment": entitlement.environment.slug,
        }
    ]
    token = ApiToken.objects.get()
    assert token.kind == TokenKind.EXCHANGED
    assert token.trust_rule == pipeline.rule
    assert body["access_token"] not in json.dumps(
        list(ApiToken.objects.values("digest", "prefix", "ci_identity"))
    )
    event = AuditEvent.objects.get(sequence=body["audit_event_id"])
    assert event.action == "api.token.exchanged"
    assert event.actor_kind == "service"
    assert event.data["ci_identity"]["repository"] == REPOSITORY
    assert event.pipeline["run_id"] == "812345"
    assert body["access_token"] not in json.dumps(event.data)
    assert token.digest not in json.dumps(event.data)


def test_es256_gitlab_token_is_exchanged(
    pipeline: Pipeline, gitlab_issuer: Any, ec_key: SigningKey
) -> None:
    TrustRule.objects.create(
        issuer=gitlab_issuer,
        service_account=pipeline.account,
        repository=REPOSITORY,
        ref="refs/heads/main",  # GitLab's bare "main" with ref_type branch is normalised
        environment="production",
        created_by=pipeline.owner,
    )
    response = exchange(sign(gitlab_claims(), ec_key))

    assert response.status_code == 201, response.content
    token = ApiToken.objects.get()
    assert token.ci_identity["ref"] == "refs/heads/main"
    assert token.ci_identity["run_id"] == "99001"


def test_wrong_issuer_is_refused(pipeline: Pipeline, rsa_key: SigningKey) -> None:
    body = refused(
        sign(github_claims(iss="https://evil.example.com"), rsa_key), 401, "untrusted_issuer"
    )
    assert "not trusted" in body["error"]["message"]


def test_paused_issuer_is_refused(pipeline: Pipeline, rsa_key: SigningKey) -> None:
    pipeline.rule.issuer.is_active = False
    pipeline.rule.issuer.save()
    refused(sign(github_claims(), rsa_key), 401, "untrusted_issuer")


def test_wrong_audience_is_refused(pipeline: Pipeline, rsa_key: SigningKey) -> None:
    body = refused(sign(github_claims(aud="someone-else"), rsa_key), 401, "wrong_audience")
    assert "'gatehouse'" in body["error"]["message"]


def test_expired_token_is_refused(pipeline: Pipeline, rsa_key: SigningKey) -> None:
    claims = github_claims()
    claims.update(iat=claims["iat"] - 900, nbf=claims["nbf"] - 900, exp=claims["iat"] - 300)
    refused(sign(claims, rsa_key), 401, "token_expired")


def test_not_yet_valid_token_is_refused(pipeline: Pipeline, rsa_key: SigningKey) -> None:
    claims = github_claims()
    claims.update(nbf=claims["iat"] + 600, exp=claims["iat"] + 900)
    refused(sign(claims, rsa_key), 401, "token_not_yet_valid")


def _unsigned(claims: dict[str, Any], kid: str) -> str:
    def part(value: dict[str, Any]) -> str:
        raw = json.dumps(value, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{part(claims)}."


def test_alg_none_is_refused(pipeline: Pipeline, rsa_key: SigningKey) -> None:
    refused(_unsigned(github_claims(), rsa_key.kid), 401, "unsigned_token")


def test_hs256_signed_with_the_public_key_is_refused(
    pipeline: Pipeline, rsa_key: SigningKey
) -> None:
    # The classic confusion attack: HMAC keyed with the issuer's public key, which anyone has.
    from cryptography.hazmat.primitives import serialization

    public_pem = rsa_key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "JWT", "kid": rsa_key.kid}
    signing_input = b".".join(
        base64.urlsafe_b64encode(json.dumps(v, separators=(",", ":")).encode()).rstrip(b"=")
        for v in (header, github_claims())
    )
    signature = HMACAlgorithm(HMACAlgorithm.SHA256).sign(signing_input, public_pem)
    forged = f"{signing_input.decode()}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"

    body = refused(forged, 401, "alg_not_allowed")
    assert "HS256" in body["error"]["message"]


def test_unknown_kid_is_refused_after_refreshing_the_keys(
    pipeline: Pipeline, rsa_key: SigningKey, jwks_server: JwksServer, settings: Any
) -> None:
    settings.API_JWKS_MIN_REFRESH_SECONDS = 0
    assert exchange(sign(github_claims(), rsa_key)).status_code == 201
    assert jwks_server.hits == 1

    stranger = SigningKey(kid="not-published", alg="RS256", private=rsa_key.private)
    refused_body = exchange(sign(github_claims(), stranger)).json()

    assert refused_body["error"]["code"] == "unknown_kid"
    assert jwks_server.hits == 2  # an unknown kid refreshed the cached keys once


def test_rotated_issuer_key_is_picked_up_on_unknown_kid(
    pipeline: Pipeline, rsa_key: SigningKey, jwks_server: JwksServer, settings: Any
) -> None:
    settings.API_JWKS_MIN_REFRESH_SECONDS = 0
    assert exchange(sign(github_claims(), rsa_key)).status_code == 201
    rotated = SigningKey(kid="rsa-2", alg="RS256", private=rsa_key.private)
    jwks_server.keys = [rotated.public_jwk()]

    assert exchange(sign(github_claims(), rotated)).status_code == 201
    assert jwks_server.hits == 2


def test_cached_keys_are_not_refetched_for_every_exchange(
    pipeline: Pipeline, rsa_key: SigningKey, jwks_server: JwksServer
) -> None:
    for _ in range(3):
        assert exchange(sign(github_claims(), rsa_key)).status_code == 201
    stranger = SigningKey(kid="nope", alg="RS256", private=rsa_key.private)
    assert exchange(sign(github_claims(), stranger)).json()["error"]["code"] == "unknown_kid"
    assert jwks_server.hits == 1  # refreshes on unknown kid are throttled


def test_tampered_payload_is_refused(pipeline: Pipeline, rsa_key: SigningKey) -> None:
    header, _, signature = sign(github_claims(), rsa_key).split(".")
    evil = base64.urlsafe_b64encode(
        json.dumps(github_claims(repository="acme/other")).encode()
    ).rstrip(b"=")
    refused(f"{header}.{evil.decode()}.{signature}", 401, "invalid_signature")


def test_key_of_another_type_than_the_alg_is_refused(
    pipeline: Pipeline, rsa_key: SigningKey, ec_key: SigningKey
) -> None:
    # Signed with the EC key but naming the RSA key's kid.
    mixed = SigningKey(kid=rsa_key.kid, alg="ES256", private=ec_key.private)
    refused(sign(github_claims(), mixed), 401, "alg_not_allowed")


def test_garbage_is_refused_as_malformed(pipeline: Pipeline) -> None:
    refused("not-a-jwt", 401, "malformed_token")


def test_missing_repository_claim_is_refused(pipeline: Pipeline, rsa_key: SigningKey) -> None:
    refused(sign(github_claims(repository=None), rsa_key), 401, "missing_claim")


def test_unreachable_jwks_is_a_503(
    pipeline: Pipeline, rsa_key: SigningKey, jwks_server: JwksServer
) -> None:
    jwks_server.status = 500
    refused(sign(github_claims(), rsa_key), 503, "jwks_unavailable")


def test_claims_matching_no_rule_are_refused(pipeline: Pipeline, rsa_key: SigningKey) -> None:
    body = refused(sign(github_claims(ref="refs/heads/feature/x"), rsa_key), 403, "no_trust_rule")
    assert "refs/heads/feature/x" in body["error"]["message"]


def test_wildcard_ref_and_environment_narrow_a_rule(
    pipeline: Pipeline, rsa_key: SigningKey
) -> None:
    pipeline.rule.ref = "refs/tags/v*"
    pipeline.rule.environment = "production"
    pipeline.rule.save()

    assert exchange(sign(github_claims(ref="refs/tags/v1.2.0"), rsa_key)).status_code == 201
    assert exchange(sign(github_claims(ref="refs/heads/main"), rsa_key)).status_code == 403
    staging = github_claims(ref="refs/tags/v1.2.0", environment="staging")
    assert exchange(sign(staging, rsa_key)).json()["error"]["code"] == "no_trust_rule"


def test_rules_of_two_accounts_matching_are_refused(
    pipeline: Pipeline, rsa_key: SigningKey
) -> None:
    other = make_service_account("other-deployer", pipeline.owner)
    TrustRule.objects.create(
        issuer=pipeline.rule.issuer,
        service_account=other,
        repository=REPOSITORY,
        created_by=pipeline.owner,
    )
    refused(sign(github_claims(), rsa_key), 403, "ambiguous_trust_rule")


def test_deactivated_account_is_refused(pipeline: Pipeline, rsa_key: SigningKey) -> None:
    pipeline.account.is_active = False
    pipeline.account.save()
    refused(sign(github_claims(), rsa_key), 403, "account_inactive")


def test_exchange_is_rate_limited_per_client(
    pipeline: Pipeline, rsa_key: SigningKey, settings: Any
) -> None:
    settings.API_EXCHANGE_RATE_LIMIT_PER_MINUTE = 2
    raw = sign(github_claims(), rsa_key)
    assert exchange(raw).status_code == 201
    assert exchange(raw).status_code == 201
    response = exchange(raw)
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert int(response["Retry-After"]) > 0


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "invalid_request"),
        ({"id_token": 5}, "invalid_request"),
        ({"x": "y"}, "invalid_request"),
    ],
)
def test_bad_bodies_are_400(db: None, body: Any, code: str) -> None:
    response = api_post(Client(), URL, body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


def test_a_form_post_is_415(db: None) -> None:
    response = Client().post(URL, {"id_token": "x"})
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


def test_get_is_405(db: None) -> None:
    response = Client().get(URL)
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_issuer_claim_of_an_unverified_token_is_recorded_short(
    pipeline: Pipeline, rsa_key: SigningKey
) -> None:
    refused(
        sign(github_claims(iss="https://x.example/" + "a" * 5000), rsa_key), 401, "untrusted_issuer"
    )
    event = AuditEvent.objects.order_by("-sequence").first()
    assert event is not None and len(event.data["iss"]) <= 200


@pytest.mark.parametrize("bad", ["\x00", "\ud800"], ids=["nul", "lone-surrogate"])
def test_text_no_database_stores_in_unverified_claims_is_refused_not_a_500(
    pipeline: Pipeline, rsa_key: SigningKey, bad: str
) -> None:
    # A JWT's JSON may carry \u0000 or \ud800: PostgreSQL refuses the first in a lookup, and
    # neither fits in the refusal's audit event (jsonb, the ledger's UTF-8 hash input).
    refused(sign(github_claims(iss=f"https://x{bad}.example"), rsa_key), 401, "untrusted_issuer")
    stranger = SigningKey(kid=f"kid{bad}", alg="RS256", private=rsa_key.private)
    refused(sign(github_claims(sub=f"repo{bad}"), stranger), 401, "unknown_kid")

    event = AuditEvent.objects.order_by("-sequence").first()
    assert event is not None
    assert (event.data["kid"], event.data["sub"]) == ("kid", "repo")
