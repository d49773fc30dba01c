"""Fixtures for the pipeline API: real keys, a real JWKS server on loopback, CI ID tokens signed
like GitHub Actions and GitLab CI sign them, service accounts with grants, and API clients."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.core.cache import cache
from django.test import Client
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from accessreq.models import ClaimFormat, Entitlement, TrustedIssuer, TrustRule
from accessreq.services.tokens import IssuedToken, token_issue
from portal.models import User
from tests.accessreq.workflow_helpers import FRESH, direct_grant, make_entitlement
from tests.factories import UserFactory

AUDIENCE = "gatehouse"
REPOSITORY = "acme/payments-service"


@dataclass
class JwksServer:
    """Serves ``keys`` as a JWKS document; ``hits`` counts the fetches."""

    url: str
    keys: list[dict[str, Any]] = field(default_factory=list)
    hits: int = 0
    status: int = 200


@dataclass
class SigningKey:
    kid: str
    alg: str
    private: Any

    def public_jwk(self) -> dict[str, Any]:
        algorithm = RSAAlgorithm if self.alg == "RS256" else ECAlgorithm
        jwk = json.loads(algorithm.to_jwk(self.private.public_key()))
        return {**jwk, "kid": self.kid, "use": "sig", "alg": self.alg}


_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # once: generation is slow


@pytest.fixture
def rsa_key() -> SigningKey:
    return SigningKey(kid="rsa-1", alg="RS256", private=_RSA)


@pytest.fixture
def ec_key() -> SigningKey:
    return SigningKey(kid="ec-1", alg="ES256", private=ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture
def jwks_server(rsa_key: SigningKey, ec_key: SigningKey) -> Iterator[JwksServer]:
    state = JwksServer(url="", keys=[rsa_key.public_jwk(), ec_key.public_jwk()])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            state.hits += 1
            body = json.dumps({"keys": state.keys}).encode()
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks"
    yield state
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture(autouse=True)
def _clear_cache() -> Iterator[None]:
    cache.clear()  # JWKS and rate-limit counters must not leak between tests
    yield
    cache.clear()


@pytest.fixture
def github_issuer(db: None, jwks_server: JwksServer) -> TrustedIssuer:
    return TrustedIssuer.objects.create(
        name="GitHub Actions",
        issuer="https://token.actions.githubusercontent.com",
        audience=AUDIENCE,
        jwks_url=jwks_server.url,
        claim_format=ClaimFormat.GITHUB,
    )


@pytest.fixture
def gitlab_issuer(db: None, jwks_server: JwksServer) -> TrustedIssuer:
    return TrustedIssuer.objects.create(
        name="GitLab",
        issuer="https://gitlab.example.com",
        audience=AUDIENCE,
        jwks_url=jwks_server.url,
        claim_format=ClaimFormat.GITLAB,
    )


def github_claims(**overrides: Any) -> dict[str, Any]:
    """Claims as GitHub Actions puts them in a job's ID token."""
    now = int(time.time())
    claims = {
        "iss": "https://token.actions.githubusercontent.com",
        "aud": AUDIENCE,
        "sub": f"repo:{REPOSITORY}:environment:production",
        "repository": REPOSITORY,
        "repository_owner": "acme",
        "ref": "refs/heads/main",
        "ref_type": "branch",
        "sha": "4f2a9c1e0b7d5a3c2e1f0a9b8c7d6e5f4a3b2c1d",
        "environment": "production",
        "workflow": "deploy",
        "workflow_ref": f"{REPOSITORY}/.github/workflows/deploy.yml@refs/heads/main",
        "run_id": "812345",
        "run_attempt": "1",
        "actor": "octocat",
        "event_name": "push",
        "iat": now,
        "nbf": now,
        "exp": now + 300,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def gitlab_claims(**overrides: Any) -> dict[str, Any]:
    """Claims as GitLab CI puts them in an id_tokens: token."""
    now = int(time.time())
    claims = {
        "iss": "https://gitlab.example.com",
        "aud": AUDIENCE,
        "sub": "project_path:acme/payments-service:ref_type:branch:ref:main",
        "project_path": REPOSITORY,
        "namespace_path": "acme",
        "ref": "main",
        "ref_type": "branch",
        "ref_protected": "true",
        "pipeline_id": "99001",
        "job_id": "5501",
        "sha": "4f2a9c1e0b7d5a3c2e1f0a9b8c7d6e5f4a3b2c1d",
        "environment": "production",
        "ci_config_ref_uri": (
            "gitlab.example.com/acme/payments-service//.gitlab-ci.yml@refs/heads/main"
        ),
        "iat": now,
        "nbf": now,
        "exp": now + 300,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def sign(claims: dict[str, Any], key: SigningKey, **header: Any) -> str:
    return jwt.encode(claims, key.private, algorithm=key.alg, headers={"kid": key.kid, **header})


@dataclass
class Pipeline:
    """A service account with an owner, a prod deploy grant and a GitHub trust rule."""

    account: User
    owner: User
    entitlement: Entitlement
    rule: TrustRule


def make_service_account(name: str, *owners: User) -> User:
    account = UserFactory(
        display_name=name, email=f"{name}@service.invalid", kind=User.Kind.SERVICE
    )
    account.set_unusable_password()  # service accounts never sign in to the web UI
    account.save(update_fields=["password"])
    account.owners.add(*owners)
    return account


@pytest.fixture
def pipeline(db: None, owner: User, github_issuer: TrustedIssuer) -> Pipeline:
    account = make_service_account("payments-deployer", owner)
    entitlement = make_entitlement(tier="high", owners=[owner])
    direct_grant(account, entitlement)
    rule = TrustRule.objects.create(
        issuer=github_issuer,
        service_account=account,
        repository=REPOSITORY,
        ref="refs/heads/main",
        created_by=owner,
    )
    return Pipeline(account=account, owner=owner, entitlement=entitlement, rule=rule)


def minted(pipeline: Pipeline, **kw: Any) -> IssuedToken:
    return token_issue(
        actor=pipeline.owner,
        service_account=pipeline.account,
        kind="minted",
        name=kw.pop("name", "nightly-deploy"),
        mfa=kw.pop("mfa", FRESH),
        **kw,
    )


def api_post(client: Client, path: str, body: Any, token: str | None = None) -> Any:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return client.post(path, json.dumps(body), content_type="application/json", **headers)


def api_get(client: Client, path: str, token: str | None = None) -> Any:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return client.get(path, **headers)
