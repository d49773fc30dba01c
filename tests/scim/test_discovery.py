"""ServiceProviderConfig, ResourceTypes and Schemas, and SCIM answers for unknown endpoints."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.scim.conftest import ENTERPRISE, GROUP, LIST, USER, assert_error

pytestmark = pytest.mark.django_db


def test_service_provider_config_says_what_is_supported(scim) -> None:
    response = scim.get("ServiceProviderConfig")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/scim+json; charset=utf-8"
    body = response.json()
    assert body["patch"]["supported"] is True
    assert body["bulk"]["supported"] is False
    assert body["filter"] == {"supported": True, "maxResults": 200}
    assert body["etag"]["supported"] is True
    assert body["authenticationSchemes"][0]["type"] == "oauthbearertoken"


def test_resource_types(scim) -> None:
    body = scim.get("ResourceTypes").json()
    assert body["schemas"] == [LIST] and body["totalResults"] == 2
    user = scim.get("ResourceTypes/User").json()
    assert user["endpoint"] == "/Users" and user["schemaExtensions"][0]["schema"] == ENTERPRISE
    assert scim.get("ResourceTypes/Group").json()["schema"] == GROUP
    assert_error(scim.get("ResourceTypes/Device"), 404)


def test_schemas(scim) -> None:
    body = scim.get("Schemas").json()
    assert {s["id"] for s in body["Resources"]} == {USER, GROUP, ENTERPRISE}
    user = scim.get(f"Schemas/{USER}").json()
    names = {a["name"] for a in user["attributes"]}
    assert {"userName", "name", "displayName", "active", "emails", "groups"} <= names
    assert_error(scim.get("Schemas/urn:nope"), 404)


@pytest.mark.parametrize("path", ["", "Bulk", "Me", "Users/1/extra"])
def test_an_unknown_endpoint_is_a_scim_404(scim, path) -> None:
    assert_error(scim.get(path), 404)


def test_a_wrong_method_is_405_with_allow(scim) -> None:
    response = scim.client.delete("/scim/v2/Users", HTTP_AUTHORIZATION=f"Bearer {scim.secret}")
    assert_error(response, 405)
    assert response["Allow"] == "GET, POST"


def test_discovery_needs_the_token_too(client, db) -> None:
    assert_error(client.get(reverse("scim:config")), 401)
