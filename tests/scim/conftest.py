"""Fixtures for SCIM: a minted SCIM token, a client that speaks SCIM with it, and request
bodies shaped like the ones Okta and Entra ID send."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from audit.models import AuditEvent
from portal.models import User
from scim.tokens import MintedToken, scim_token_mint

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    cache.clear()  # rate-limit counters and the refused-token note are per test


@dataclass
class Scim:
    """A directory's HTTP client: every call carries the bearer token and SCIM JSON."""

    client: Client
    secret: str
    minted: MintedToken

    def _call(self, method: str, path: str, body: Any = None, **headers: str) -> Any:
        kwargs: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {self.secret}"}
        kwargs.update({f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()})
        call = getattr(self.client, method)
        if body is None:
            return call(f"/scim/v2/{path}", **kwargs)
        return call(
            f"/scim/v2/{path}",
            data=json.dumps(body),
            content_type="application/scim+json",
            **kwargs,
        )

    def get(self, path: str, **headers: str) -> Any:
        return self._call("get", path, **headers)

    def post(self, path: str, body: Any, **headers: str) -> Any:
        return self._call("post", path, body, **headers)

    def put(self, path: str, body: Any, **headers: str) -> Any:
        return self._call("put", path, body, **headers)

    def patch(self, path: str, body: Any, **headers: str) -> Any:
        return self._call("patch", path, body, **headers)

    def delete(self, path: str, **headers: str) -> Any:
        return self._call("delete", path, **headers)


def mint(name: str = "okta-prod") -> MintedToken:
    return scim_token_mint(actor=User.objects.system_actor(), name=name, via="test")


@pytest.fixture
def scim(db: None) -> Scim:
    minted = mint()
    return Scim(client=Client(), secret=minted.secret, minted=minted)


def okta_user(email: str = "ada@example.com", **extra: Any) -> dict[str, Any]:
    """The body Okta POSTs to /Users (Okta's SCIM 2.0 test app)."""
    given, family = "Ada", "Lovelace"
    return {
        "schemas": [USER],
        "userName": email,
        "name": {"givenName": given, "familyName": family},
        "emails": [{"primary": True, "value": email, "type": "work"}],
        "displayName": f"{given} {family}",
        "locale": "en-US",
        "externalId": "00u1ab2cd3EF4gh5i6j7",
        "groups": [],
        "password": "never-stored-1",
        "active": True,
        **extra,
    }


def entra_user(email: str = "grace@example.com", **extra: Any) -> dict[str, Any]:
    """The body Entra ID POSTs to /Users (its default attribute mappings)."""
    return {
        "schemas": [USER, ENTERPRISE],
        "externalId": "a3b1c5d7-0000-4000-8000-000000000001",
        "userName": email,
        "active": True,
        "addresses": [{"primary": True, "type": "work", "country": "GB"}],
        "displayName": "Grace Hopper",
        "emails": [{"primary": True, "type": "work", "value": email}],
        "meta": {"resourceType": "User"},
        "name": {"familyName": "Hopper", "givenName": "Grace"},
        "title": "Rear Admiral",
        ENTERPRISE: {"department": "Navy"},
        **extra,
    }


def patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH], "Operations": list(operations)}


def created(scim: Scim, body: dict[str, Any]) -> dict[str, Any]:
    response = scim.post("Users", body)
    assert response.status_code == 201, response.content
    return response.json()


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("sequence"))


def assert_error(response: Any, status: int, scim_type: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/scim+json")
    body = response.json()
    assert body["schemas"] == [ERROR]
    assert body["status"] == str(status)
    if scim_type is not None:
        assert body.get("scimType") == scim_type, body
    return body
