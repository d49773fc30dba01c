"""POST /Users: a directory creates a person (Okta's and Entra ID's bodies), and the refusals."""

from __future__ import annotations

import pytest

from portal.models import User
from scim.models import ScimIdentity
from tests.factories import UserFactory
from tests.scim.conftest import ENTERPRISE, assert_error, created, entra_user, events, okta_user

pytestmark = pytest.mark.django_db


def test_okta_creates_a_person_who_joins_with_no_password(scim) -> None:
    response = scim.post("Users", okta_user("Ada@Example.com"))

    assert response.status_code == 201
    assert response["Content-Type"].startswith("application/scim+json")
    body = response.json()
    person = User.objects.get(email="ada@example.com")
    assert body["id"] == str(person.pk)
    assert body["userName"] == "ada@example.com"
    assert body["displayName"] == "Ada Lovelace" == person.display_name
    assert body["active"] is True and person.is_active
    assert body["externalId"] == "00u1ab2cd3EF4gh5i6j7"
    assert body["name"] == {
        "formatted": "Ada Lovelace",
        "givenName": "Ada",
        "familyName": "Lovelace",
    }
    assert response["Location"] == body["meta"]["location"]
    assert body["meta"]["location"].endswith(f"/scim/v2/Users/{person.pk}")
    assert response["ETag"] == body["meta"]["version"]
    assert person.kind == User.Kind.HUMAN
    assert not person.has_usable_password()  # Okta's password is never stored
    (event,) = events("user.created")
    assert event.actor_kind == "system"
    assert event.target_id == str(person.pk)
    assert event.data["source"] == "scim:okta-prod"
    assert event.data["scim_token"] == "okta-prod"
    assert "never-stored-1" not in str(event.data)


def test_entra_creates_a_person_with_department_and_ignores_unkept_attributes(scim) -> None:
    body = created(scim, entra_user())

    assert body[ENTERPRISE] == {"department": "Navy"}
    assert "title" not in body and "addresses" not in body
    identity = ScimIdentity.objects.get(user_id=int(body["id"]))
    assert identity.department == "Navy"
    assert identity.external_id == "a3b1c5d7-0000-4000-8000-000000000001"


def test_a_manager_given_by_scim_id_is_set_at_creation(scim) -> None:
    boss = created(scim, okta_user("boss@example.com", externalId="boss"))
    body = created(
        scim, entra_user(**{ENTERPRISE: {"manager": {"value": boss["id"]}, "department": "R&D"}})
    )

    person = User.objects.get(pk=int(body["id"]))
    assert person.manager_id == int(boss["id"])
    assert body[ENTERPRISE]["manager"]["value"] == boss["id"]
    assert body[ENTERPRISE]["manager"]["displayName"] == "Ada Lovelace"


def test_a_duplicate_user_name_is_409_uniqueness(scim) -> None:
    UserFactory(email="ada@example.com")

    body = assert_error(scim.post("Users", okta_user("ADA@example.com")), 409, "uniqueness")

    assert "ada@example.com" in body["detail"]
    assert User.objects.filter(email="ada@example.com").count() == 1


def test_a_duplicate_external_id_is_409(scim) -> None:
    created(scim, okta_user("ada@example.com"))

    assert_error(scim.post("Users", okta_user("other@example.com")), 409, "uniqueness")
    assert not User.objects.filter(email="other@example.com").exists()


def test_the_email_of_a_service_account_is_taken_too(scim) -> None:
    UserFactory(email="deployer@service.invalid", kind=User.Kind.SERVICE)

    assert_error(scim.post("Users", okta_user("deployer@service.invalid")), 409, "uniqueness")


@pytest.mark.parametrize(
    ("body", "scim_type"),
    [
        ({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"]}, "invalidValue"),
        (okta_user("not-an-email"), "invalidValue"),
        (okta_user(active="maybe"), "invalidValue"),
        (okta_user(displayName=42), "invalidValue"),
        (okta_user(schemas=["urn:ietf:params:scim:schemas:core:2.0:Group"]), "invalidSyntax"),
        ([okta_user()], "invalidSyntax"),
        (okta_user(nickName="ok", favouriteColour="blue"), "invalidPath"),
    ],
)
def test_a_body_that_is_not_a_valid_user_is_400(scim, body, scim_type) -> None:
    assert_error(scim.post("Users", body), 400, scim_type)
    assert not User.objects.humans().exists()


def test_malformed_json_is_400_invalid_syntax(scim) -> None:
    response = scim.client.post(
        "/scim/v2/Users",
        data="{not json",
        content_type="application/scim+json",
        HTTP_AUTHORIZATION=f"Bearer {scim.secret}",
    )
    assert_error(response, 400, "invalidSyntax")


def test_plain_json_is_accepted_but_a_form_is_415(scim) -> None:
    response = scim.client.post(
        "/scim/v2/Users",
        data=okta_user(),
        HTTP_AUTHORIZATION=f"Bearer {scim.secret}",
    )
    assert_error(response, 415)
    response = scim.client.post(
        "/scim/v2/Users",
        data=okta_user(),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {scim.secret}",
    )
    assert response.status_code == 201
