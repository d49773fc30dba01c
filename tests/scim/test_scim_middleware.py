"""SCIM requests pass the portal's gates on the token alone: no CSRF, no sign-in page, no MFA
redirect, and a browser session gives no authority. Each token is rate-limited."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from tests.scim.conftest import assert_error, okta_user

pytestmark = pytest.mark.django_db


def test_csrf_does_not_apply(scim) -> None:
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        "/scim/v2/Users",
        data=json.dumps(okta_user()),
        content_type="application/scim+json",
        HTTP_AUTHORIZATION=f"Bearer {scim.secret}",
    )
    assert response.status_code == 201


def test_a_signed_in_session_without_a_second_factor_is_not_redirected(
    scim, security_admin
) -> None:
    client = Client()
    client.force_login(security_admin)  # password only: every page would send it to MFA

    response = client.get("/scim/v2/Users", HTTP_AUTHORIZATION=f"Bearer {scim.secret}")

    assert response.status_code == 200
    assert client.get("/").status_code == 302  # the pages stay closed


def test_a_verified_session_is_no_authority(verified_client, security_admin) -> None:
    response = verified_client(security_admin).get("/scim/v2/Users", HTTP_ACCEPT="text/html")
    assert_error(response, 401)


def test_each_token_is_rate_limited(scim, settings) -> None:
    settings.SCIM_RATE_LIMIT_PER_MINUTE = 2
    assert scim.get("Users").status_code == 200
    assert scim.get("Users").status_code == 200
    response = scim.get("Users")
    assert_error(response, 429)
    assert int(response["Retry-After"]) > 0


def test_answers_are_never_cached(scim) -> None:
    assert scim.get("Users")["Cache-Control"] == "no-store"
