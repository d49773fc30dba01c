"""Property-based tests of /api/v1 against its own OpenAPI document (schemathesis).

Every operation in the document is called through portal.wsgi's application, in process, on the
test database, with a minted bearer token: examples from the schema, its coverage cases
(boundaries, wrong types, missing fields, NUL characters) and 25 fuzzed requests, both valid and
invalid. Each answer must not be a 5xx, must use a documented status code, and must match the
schema documented for that status. Runs are reproducible: a fixed seed, derandomized, no
example database.

Random slugs and ids rarely name anything, so every other generated request is pointed at real
objects (a token of the caller, the pipeline's system and environment, a signed CI ID token),
keeping the rest of the generated request; the answers that carry data (200, 201, allow) are
checked against the schema too, not only the refusals.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from django.test import Client
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from accessreq.api.openapi import document
from accessreq.api.schema import (
    SHORT_SLUG,
    SLUG,
    TOKEN_EXCHANGE_REQUEST,
    SchemaError,
    validate,
)
from accessreq.models import ApiToken, ApproverRule
from accessreq.services.deployments import deployment_request
from accessreq.services.tokens import token_revoke
from portal.wsgi import application
from tests.accessreq.api.conftest import (
    Pipeline,
    SigningKey,
    github_claims,
    minted,
    sign,
)
from tests.accessreq.workflow_helpers import make_policy
from tests.factories import UserFactory

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
SEED = 20261202


class InTransactionWSGI:
    """portal.wsgi's application, called the way django.test.Client calls it: Django closes
    "old" database connections when a request starts and ends, which inside the test's
    transaction would drop the connection that holds it."""

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        try:
            result: Iterable[bytes] = application(environ, start_response)
            try:
                return [b"".join(result)]
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()  # sends request_finished, as a WSGI server would
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)


def served_document() -> dict[str, Any]:
    """The document as /api/v1/openapi.json serves it (JSON, not the cached Python object)."""
    return dict(json.loads(json.dumps(document())))


CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "generation": {
            "mode": "all",
            "deterministic": True,
            "database": "none",
            # The bearer header is ours (a real token); schemathesis need not invent one.
            "with-security-parameters": False,
        },
        # Each operation is its own test, every request in its own savepoint: no stateful runs.
        "phases": {"stateful": {"enabled": False}},
    }
)
SCHEMA = schemathesis.openapi.from_dict(served_document(), config=CONFIG)
SCHEMA.app = InTransactionWSGI()


def _valid(value: Any, schema: dict[str, Any]) -> bool:
    try:
        validate(value, schema)
    except SchemaError:
        return False
    return True


@dataclass
class Target:
    """Real objects for generated requests to point at, in turn with the generated values."""

    secret: str
    token_ids: list[int]
    deployment_id: int
    action: str
    system: str
    environment: str
    id_token: Callable[[], str]
    turns: Iterator[int] = field(default_factory=itertools.count)

    def aim(self, case: Any) -> None:
        """On every other request, put real ids and slugs where the generated values are valid
        (invalid ones stay, so the refusals are still tried)."""
        turn = next(self.turns)
        if turn % 2:
            return
        known = {
            "token_id": self.token_ids[(turn // 2) % len(self.token_ids)],
            "deployment_id": self.deployment_id,
        }
        for name, value in known.items():
            generated = case.path_parameters.get(name)
            if isinstance(generated, int) and not isinstance(generated, bool) and generated >= 1:
                case.path_parameters[name] = value
        body = case.body
        if not isinstance(body, dict):
            return
        for name, value, slug in (
            ("action", self.action, SHORT_SLUG),
            ("system", self.system, SLUG),
            ("environment", self.environment, SHORT_SLUG),
        ):
            if _valid(body.get(name), slug):
                body[name] = value
        checks = body.get("checks")
        if isinstance(checks, dict) and len(checks) <= 18:
            checks.update({"tests": "passed", "scan": "passed"})
        if _valid(body.get("id_token"), TOKEN_EXCHANGE_REQUEST["properties"]["id_token"]):
            body["id_token"] = self.id_token()

    def headers(self, case: Any) -> dict[str, str]:
        if case.operation.definition.raw.get("security") == []:
            return {}
        return {"Authorization": f"Bearer {self.secret}"}


@pytest.fixture
def target(pipeline: Pipeline, rsa_key: SigningKey) -> Target:
    """The pipeline's account with four tokens (the caller's, another active one, a revoked and
    an expired one) and a pending deployment its policy routes to a releaser."""
    entitlement = pipeline.entitlement
    entitlement.policy = make_policy("Prod deploys", (ApproverRule.SYSTEM_OWNER, 1, False))
    entitlement.save()
    entitlement.system.owners.add(UserFactory(display_name="Rita Releaser"))

    caller = minted(pipeline)
    other = minted(pipeline, name="spare")
    revoked = minted(pipeline, name="retired")
    token_revoke(actor=pipeline.owner, token_id=revoked.token.pk, reason="rotated")
    expired = minted(pipeline, name="old")
    ApiToken.objects.filter(pk=expired.token.pk).update(
        created_at=expired.token.created_at - timedelta(days=40),
        expires_at=expired.token.created_at - timedelta(days=10),
    )
    opened = deployment_request(
        token=caller.token,
        system=entitlement.system.slug,
        environment=entitlement.environment.slug,
        commit_sha="0123456789abcdef0123456789abcdef01234567",
        checks={"tests": "passed", "scan": "passed"},
    )
    return Target(
        secret=caller.secret,
        token_ids=[caller.token.pk, other.token.pk, revoked.token.pk, expired.token.pk],
        deployment_id=opened.deployment.pk,
        action="deploy",
        system=entitlement.system.slug,
        environment=entitlement.environment.slug,
        id_token=lambda: sign(github_claims(), rsa_key),
    )


def test_the_fuzzed_document_is_the_served_one(db: None) -> None:
    assert Client().get("/api/v1/openapi.json").json() == SCHEMA.raw_schema


@SCHEMA.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    # The database fixture is shared by the examples on purpose: each request runs in a
    # savepoint that is rolled back, so every example sees the same objects.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_operation_answers_as_documented(case: Any, target: Target) -> None:
    target.aim(case)
    savepoint = transaction.savepoint()
    try:
        response = case.call(headers=target.headers(case))
        case.validate_response(response, checks=CHECKS)
    finally:
        transaction.savepoint_rollback(savepoint)
        cache.clear()  # rate-limit counters: 25+ requests a test must not reach them
