"""The OpenAPI document and the browsable reference: public, complete, served without a CDN."""

from __future__ import annotations

import re
from typing import Any

from django.test import Client
from django.urls import URLResolver, get_resolver

from accessreq.api.openapi import EXCHANGE_ERRORS, document


def test_schema_is_public_json_and_lists_every_endpoint(db: None) -> None:
    response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"

    resolver = get_resolver().url_patterns
    api = next(p for p in resolver if str(getattr(p, "pattern", "")) == "api/v1/")
    assert isinstance(api, URLResolver)
    routes = {
        "/" + re.sub(r"<int:(\w+)>", r"{\1}", str(p.pattern))
        for p in api.url_patterns
        if getattr(p, "name", None) not in (None, "openapi", "docs")
    }
    assert routes == set(schema["paths"])


def test_every_operation_documents_its_errors_and_security(db: None) -> None:
    for path, methods in document()["paths"].items():
        for method, operation in methods.items():
            assert operation["operationId"], (path, method)
            assert any(code.startswith(("4", "5")) for code in operation["responses"]), path
            authenticated = operation["security"] != []
            assert ("401" in operation["responses"]) or not authenticated, path


def test_exchange_documents_each_refusal_code() -> None:
    codes = set(EXCHANGE_ERRORS)
    for expected in (
        "untrusted_issuer",
        "wrong_audience",
        "token_expired",
        "token_not_yet_valid",
        "unsigned_token",
        "alg_not_allowed",
        "unknown_kid",
        "invalid_signature",
        "no_trust_rule",
    ):
        assert expected in codes


def test_docs_page_is_readable_without_signing_in_and_loads_nothing_remote(db: None) -> None:
    response = Client().get("/api/v1/docs")
    assert response.status_code == 200
    page = response.content.decode()
    assert "POST /api/v1/authorize" in page.replace("</span> <code>", " ")
    assert "token_not_yet_valid" in page and "scope_not_held" in page
    assert "payments-service" in page  # the example body
    remote = re.findall(r'(?:src|href)="(https?:)?//[^"]*"', page)
    assert remote == []


def test_docs_page_does_not_act_for_a_signed_in_person(
    db: None, verified_client: Any, owner: Any
) -> None:
    page = verified_client(owner).get("/api/v1/docs").content.decode()
    assert owner.email not in page  # rendered for nobody in particular
