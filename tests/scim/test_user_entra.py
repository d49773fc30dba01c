"""Entra ID's PATCH requests: capitalised ops, paths, string booleans, the enterprise manager."""

from __future__ import annotations

import pytest

from portal.models import User
from scim.models import ScimIdentity
from tests.scim.conftest import (
    ENTERPRISE,
    assert_error,
    created,
    entra_user,
    events,
    okta_user,
    patch,
)

pytestmark = pytest.mark.django_db


def test_entra_test_connection_finds_no_one_with_a_random_user_name(scim) -> None:
    response = scim.get('Users?filter=userName eq "9a6e5a2c-1f5b-4f0e-9a5d-7c1f3c2b9e11"')
    assert response.status_code == 200
    assert response.json()["totalResults"] == 0


def test_entra_deactivates_with_the_string_false(scim) -> None:
    made = created(scim, entra_user())

    response = scim.patch(
        f"Users/{made['id']}", patch({"op": "Replace", "path": "active", "value": "False"})
    )

    assert response.status_code == 200
    person = User.objects.get(pk=int(made["id"]))
    assert not person.is_active and person.employment_status == User.EmploymentStatus.LEFT
    scim.patch(f"Users/{made['id']}", patch({"op": "Replace", "path": "active", "value": "True"}))
    assert User.objects.get(pk=int(made["id"])).is_active


def test_entra_changes_the_work_email_and_given_name(scim) -> None:
    made = created(scim, entra_user())

    response = scim.patch(
        f"Users/{made['id']}",
        patch(
            {"op": "Add", "path": 'emails[type eq "work"].value', "value": "G.Hopper@example.com"},
            {"op": "Replace", "path": "name.givenName", "value": "Amazing"},
        ),
    )

    body = response.json()
    assert body["emails"][0]["value"] == "g.hopper@example.com"
    assert body["userName"] == "grace@example.com"  # the sign-in address is userName's
    assert body["name"]["givenName"] == "Amazing"
    assert body["displayName"] == "Amazing Hopper"  # it was made from the name parts
    (event,) = events("user.changed")
    assert set(event.data["changes"]) == {"emails.work", "name.givenName", "displayName"}


def test_a_display_name_of_its_own_survives_a_given_name_change(scim) -> None:
    made = created(scim, entra_user(displayName="Amazing Grace"))
    body = scim.patch(
        f"Users/{made['id']}", patch({"op": "Replace", "path": "name.givenName", "value": "G."})
    ).json()
    assert body["displayName"] == "Amazing Grace"


def test_entra_sets_and_removes_the_manager_and_the_department(scim) -> None:
    boss = created(scim, okta_user("boss@example.com", externalId="boss"))
    made = created(scim, entra_user())

    response = scim.patch(
        f"Users/{made['id']}",
        patch(
            {"op": "Add", "path": f"{ENTERPRISE}:manager", "value": {"value": boss["id"]}},
            {"op": "Replace", "path": f"{ENTERPRISE}:department", "value": "Compilers"},
        ),
    )

    assert response.status_code == 200, response.content
    assert response.json()[ENTERPRISE]["manager"]["value"] == boss["id"]
    assert response.json()[ENTERPRISE]["department"] == "Compilers"
    person = User.objects.get(pk=int(made["id"]))
    assert person.manager_id == int(boss["id"])
    assert ScimIdentity.objects.get(user=person).department == "Compilers"

    scim.patch(f"Users/{made['id']}", patch({"op": "Remove", "path": f"{ENTERPRISE}:manager"}))
    person.refresh_from_db()
    assert person.manager_id is None


@pytest.mark.parametrize("shape", ["plain", "list"])
def test_a_manager_given_as_a_plain_id_or_a_list_works_too(scim, shape) -> None:
    boss = created(scim, okta_user("boss@example.com", externalId="boss"))
    made = created(scim, entra_user())
    value = boss["id"] if shape == "plain" else [{"value": boss["id"]}]
    scim.patch(
        f"Users/{made['id']}",
        patch({"op": "Add", "path": f"{ENTERPRISE}:manager", "value": value}),
    )
    assert User.objects.get(pk=int(made["id"])).manager_id == int(boss["id"])


@pytest.mark.parametrize("manager", ["424242", "not-an-id", "self"])
def test_an_unknown_manager_is_400_invalid_value(scim, manager) -> None:
    made = created(scim, entra_user())
    value = made["id"] if manager == "self" else manager
    assert_error(
        scim.patch(
            f"Users/{made['id']}",
            patch({"op": "Add", "path": f"{ENTERPRISE}:manager", "value": {"value": value}}),
        ),
        400,
        "invalidValue",
    )


def test_entra_changes_several_attributes_in_one_patch(scim) -> None:
    made = created(scim, entra_user())
    body = scim.patch(
        f"Users/{made['id']}",
        patch(
            {"op": "Replace", "path": "displayName", "value": "Grace B. Hopper"},
            {"op": "Replace", "path": "externalId", "value": "b0b0"},
            {"op": "Replace", "path": "title", "value": "Commodore"},
            {"op": "Add", "path": 'phoneNumbers[type eq "work"].value', "value": "+44 1"},
        ),
    ).json()
    assert body["displayName"] == "Grace B. Hopper" and body["externalId"] == "b0b0"
