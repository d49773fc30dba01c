"""Okta's updates: PUT with the whole user, and PATCH with a path-less value for activation."""

from __future__ import annotations

import pytest

from portal.models import User
from tests.scim.conftest import assert_error, created, events, okta_user, patch

pytestmark = pytest.mark.django_db


def test_okta_put_replaces_the_attributes_it_sends(scim) -> None:
    made = created(scim, okta_user())
    body = okta_user(
        "ada.king@example.com",
        id=made["id"],
        name={"givenName": "Ada", "familyName": "King"},
        displayName="Ada King",
        emails=[{"primary": True, "value": "ada.king@example.com", "type": "work"}],
    )

    response = scim.put(f"Users/{made['id']}", body)

    assert response.status_code == 200, response.content
    result = response.json()
    assert result["userName"] == "ada.king@example.com"
    assert result["displayName"] == "Ada King"
    assert result["name"]["familyName"] == "King"
    assert result["meta"]["version"] != made["meta"]["version"]
    person = User.objects.get(pk=int(made["id"]))
    assert person.email == "ada.king@example.com" and person.display_name == "Ada King"
    (event,) = events("user.changed")
    assert event.data["changes"]["userName"] == {
        "before": "ada@example.com",
        "after": "ada.king@example.com",
    }
    assert event.data["source"] == "scim:okta-prod"


def test_a_put_that_changes_nothing_writes_no_event(scim) -> None:
    made = created(scim, okta_user())
    response = scim.put(f"Users/{made['id']}", okta_user())
    assert response.status_code == 200
    assert response.json()["meta"]["version"] == made["meta"]["version"]
    assert events("user.changed") == []


def test_a_put_to_a_taken_user_name_is_409(scim) -> None:
    created(scim, okta_user("ada@example.com", externalId="a"))
    other = created(scim, okta_user("bob@example.com", externalId="b"))

    assert_error(
        scim.put(f"Users/{other['id']}", okta_user("ada@example.com", externalId="b")),
        409,
        "uniqueness",
    )
    assert User.objects.get(pk=int(other["id"])).email == "bob@example.com"


def test_okta_deactivates_with_a_path_less_replace(scim) -> None:
    made = created(scim, okta_user())

    response = scim.patch(
        f"Users/{made['id']}", patch({"op": "replace", "value": {"active": False}})
    )

    assert response.status_code == 200
    assert response.json()["active"] is False
    person = User.objects.get(pk=int(made["id"]))
    assert not person.is_active
    assert person.employment_status == User.EmploymentStatus.LEFT


def test_okta_reactivates_someone_who_left(scim) -> None:
    made = created(scim, okta_user())
    scim.patch(f"Users/{made['id']}", patch({"op": "replace", "value": {"active": False}}))

    response = scim.patch(
        f"Users/{made['id']}", patch({"op": "replace", "value": {"active": True}})
    )

    assert response.json()["active"] is True
    person = User.objects.get(pk=int(made["id"]))
    assert person.is_active and person.employment_status == User.EmploymentStatus.ACTIVE


def test_okta_password_pushes_are_ignored(scim) -> None:
    made = created(scim, okta_user())
    response = scim.patch(
        f"Users/{made['id']}",
        patch({"op": "replace", "value": {"password": "hunter2-but-longer"}}),
    )
    assert response.status_code == 200
    assert not User.objects.get(pk=int(made["id"])).has_usable_password()


def test_an_unknown_id_is_404_for_put_and_patch(scim) -> None:
    assert_error(scim.put("Users/424242", okta_user()), 404)
    assert_error(
        scim.patch("Users/424242", patch({"op": "replace", "value": {"active": False}})), 404
    )


@pytest.mark.parametrize(
    ("body", "scim_type"),
    [
        (
            {"Operations": [{"op": "replace", "value": {"active": False}}], "schemas": ["x"]},
            "invalidSyntax",
        ),
        (patch(), "invalidSyntax"),
        (patch({"op": "frobnicate", "path": "active", "value": False}), "invalidSyntax"),
        (patch({"op": "replace", "path": "active"}), "invalidSyntax"),
        (patch({"op": "remove"}), "noTarget"),
        (patch({"op": "replace", "value": "False"}), "invalidValue"),
        (patch({"op": "replace", "path": "shoeSize", "value": 9}), "invalidPath"),
        (patch({"op": "remove", "path": "userName"}), "mutability"),
    ],
)
def test_a_malformed_patch_is_400(scim, body, scim_type) -> None:
    made = created(scim, okta_user())
    assert_error(scim.patch(f"Users/{made['id']}", body), 400, scim_type)
    assert User.objects.get(pk=int(made["id"])).is_active
