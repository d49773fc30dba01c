"""SCIM tokens: minted on the portal page by security admins (shown once, stored hashed),
revoked there or with ``manage.py scim_token``, and refused once revoked."""

from __future__ import annotations

import re
import time
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from scim.models import ScimToken
from scim.tokens import token_digest
from tests.scim.conftest import Scim, assert_error, events, mint

pytestmark = pytest.mark.django_db


def _secret(html: str) -> str:
    match = re.search(r'value="(gts_[A-Za-z0-9_-]{43})"', html)
    assert match, html
    return match.group(1)


def test_a_security_admin_mints_a_token_shown_once_and_stored_hashed(
    verified_client, security_admin
) -> None:
    client = verified_client(security_admin)

    response = client.post("/scim/tokens/", {"name": "okta-prod"})

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    secret = _secret(response.content.decode())
    token = ScimToken.objects.get()
    assert token.name == "okta-prod" and token.created_by == security_admin
    assert token.digest == token_digest(secret) and secret not in token.digest
    assert token.prefix == secret[:12]
    listing = client.get("/scim/tokens/").content.decode()
    assert "okta-prod" in listing and secret not in listing
    (event,) = events("scim.token.minted")
    assert event.actor_id == security_admin.pk
    assert event.data["scim_token"] == "okta-prod"
    assert secret not in str(event.data) and token.digest not in str(event.data)
    assert Client().get("/scim/v2/Users", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200


def test_minting_needs_a_fresh_second_factor(verified_client, security_admin) -> None:
    client = verified_client(security_admin)
    session = client.session
    session["mfa_verified_at"] = time.time() - 3600
    session.save()

    response = client.post("/scim/tokens/", {"name": "okta-prod"})

    assert response.status_code == 400
    assert "fresh second factor" in response.content.decode()
    assert not ScimToken.objects.exists()


def test_names_are_unique(verified_client, security_admin) -> None:
    mint("okta-prod")
    response = verified_client(security_admin).post("/scim/tokens/", {"name": "OKTA-prod"})
    assert response.status_code == 400
    assert ScimToken.objects.count() == 1


@pytest.mark.parametrize("persona", ["auditor", "outsider", "manager"])
def test_the_page_is_404_for_everyone_else(request, verified_client, persona) -> None:
    client = verified_client(request.getfixturevalue(persona))
    token = mint()

    assert client.get("/scim/tokens/").status_code == 404
    assert client.post("/scim/tokens/", {"name": "mine"}).status_code == 404
    assert client.post(f"/scim/tokens/{token.token.pk}/revoke/").status_code == 404
    token.token.refresh_from_db()
    assert token.token.revoked_at is None
    assert ScimToken.objects.count() == 1


def test_anonymous_is_sent_to_sign_in(db) -> None:
    response = Client().get("/scim/tokens/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_security_admin_revokes_a_token_and_the_directory_gets_401(
    verified_client, security_admin, scim: Scim
) -> None:
    assert scim.get("Users").status_code == 200
    client = verified_client(security_admin)

    response = client.post(
        f"/scim/tokens/{scim.minted.token.pk}/revoke/", {"reason": "moved to Entra"}
    )

    assert response.status_code == 302
    token = ScimToken.objects.get()
    assert token.revoked_by == security_admin and token.revoke_reason == "moved to Entra"
    body = assert_error(scim.get("Users"), 401)
    assert "revoked" in body["detail"]
    scim.get("Users")
    (refused,) = events("scim.token.refused")  # once a minute, however often it is replayed
    assert refused.data["scim_token"] == "okta-prod"
    assert events("scim.token.revoked")[0].data["reason"] == "moved to Entra"
    assert client.post(f"/scim/tokens/{token.pk}/revoke/").status_code == 302  # already: a message
    assert client.post("/scim/tokens/99999/revoke/").status_code == 404


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Basic b2t0YTpwYXNz",
        "Bearer gts_" + "A" * 43,
        "Bearer gtm_" + "A" * 43,
        "Bearer ",
    ],
)
def test_a_missing_or_bad_token_is_401(scim: Scim, header) -> None:
    extra = {"HTTP_AUTHORIZATION": header} if header is not None else {}
    response = Client().get("/scim/v2/Users", **extra)
    assert_error(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_use_is_noted_as_last_used(scim: Scim) -> None:
    assert scim.minted.token.last_used_at is None
    scim.get("ServiceProviderConfig")
    scim.minted.token.refresh_from_db()
    assert scim.minted.token.last_used_at is not None


def test_the_command_mints_lists_and_revokes(db) -> None:
    out = StringIO()
    call_command("scim_token", "mint", "entra-id", stdout=out)
    secret = re.search(r"gts_[A-Za-z0-9_-]{43}", out.getvalue())
    assert secret
    token = ScimToken.objects.get(name="entra-id")
    assert token.digest == token_digest(secret.group(0))

    listing = StringIO()
    call_command("scim_token", "list", stdout=listing)
    assert "entra-id" in listing.getvalue() and secret.group(0) not in listing.getvalue()

    call_command("scim_token", "revoke", "entra-id", "--reason", "rotated", stdout=StringIO())
    token.refresh_from_db()
    assert token.revoked_at is not None and token.revoke_reason == "rotated"
    assert [e.data["via"] for e in events("scim.token.minted")] == ["manage.py"]
    assert [e.data["via"] for e in events("scim.token.revoked")] == ["manage.py"]


def test_a_session_without_a_second_factor_is_sent_to_mfa(security_admin) -> None:
    client = Client()
    client.force_login(security_admin)
    response = client.get("/scim/tokens/")
    assert response.status_code == 302 and response["Location"].startswith("/mfa/")


def test_the_page_does_not_query_per_token(
    verified_client, security_admin, django_assert_max_num_queries
) -> None:
    client = verified_client(security_admin)
    mint("one")
    with django_assert_max_num_queries(30) as few:
        client.get("/scim/tokens/")
    for n in range(8):
        mint(f"more-{n}")
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get("/scim/tokens/").status_code == 200
