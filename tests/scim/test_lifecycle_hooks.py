"""What a directory's changes do to access: SCIM goes through the identity lifecycle (join,
move, leave, return) and every event names the directory that pushed the change."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client

from accessreq.models import BirthrightAccess, Grant, GrantState
from portal.models import Session, User
from tests.accessreq.workflow_helpers import direct_grant, make_entitlement
from tests.factories import TeamFactory, UserFactory
from tests.scim.conftest import ENTERPRISE, GROUP, created, entra_user, events, okta_user, patch

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("signing_key_file")]

SOURCE = "scim:okta-prod"


def _signed_in(person: User) -> None:
    client = Client()
    client.force_login(person)
    assert Session.objects.filter(user_id=person.pk).exists()


def test_a_created_person_joins_as_the_system_naming_the_directory(scim) -> None:
    made = created(scim, okta_user())

    (joined,) = events("person.joined")
    assert joined.target_id == made["id"]
    assert joined.actor_kind == "system"
    assert joined.data["source"] == SOURCE
    assert joined.data["birthright_grants"] == []  # no team yet: nothing by default


def test_joining_a_group_grants_its_birthright_access(scim) -> None:
    team = TeamFactory(name="Payments", slug="payments")
    entitlement = make_entitlement()
    BirthrightAccess.objects.create(team=team, entitlement=entitlement, duration=timedelta(days=7))
    person = created(scim, okta_user())

    scim.patch(
        f"Groups/{team.pk}",
        patch({"op": "add", "path": "members", "value": [{"value": person["id"]}]}),
    )

    grant = Grant.objects.get(beneficiary_id=int(person["id"]))
    assert grant.entitlement == entitlement and grant.state == GrantState.ACTIVE
    (moved,) = events("person.moved")
    assert moved.data["source"] == SOURCE and moved.data["team"]["after"] == "Payments"
    assert moved.data["birthright_grants"] == [grant.pk]


def test_deactivation_is_a_leave_sessions_end_and_access_is_revoked(scim) -> None:
    made = created(scim, okta_user())
    person = User.objects.get(pk=int(made["id"]))
    grant = direct_grant(person, make_entitlement())
    _signed_in(person)

    scim.patch(f"Users/{person.pk}", patch({"op": "replace", "value": {"active": False}}))

    grant.refresh_from_db()
    assert grant.state == GrantState.REVOKED
    assert not Session.objects.filter(user_id=person.pk).exists()
    (left,) = events("person.left")
    assert left.data["source"] == SOURCE
    assert left.data["reason"] == "deactivated in the directory"
    assert left.data["grants_revoked"] == 1
    # Okta repeats itself: a second deactivation finds nothing to do.
    scim.patch(f"Users/{person.pk}", patch({"op": "replace", "value": {"active": False}}))
    assert len(events("person.left")) == 1


def test_reactivation_is_a_return_without_the_old_access(scim) -> None:
    made = created(scim, okta_user())
    person = User.objects.get(pk=int(made["id"]))
    grant = direct_grant(person, make_entitlement())
    scim.patch(f"Users/{person.pk}", patch({"op": "Replace", "path": "active", "value": "False"}))

    scim.patch(f"Users/{person.pk}", patch({"op": "Replace", "path": "active", "value": "True"}))

    person.refresh_from_db()
    assert person.is_active and person.employment_status == User.EmploymentStatus.ACTIVE
    grant.refresh_from_db()
    assert grant.state == GrantState.REVOKED
    assert not Grant.objects.filter(beneficiary=person, state=GrantState.ACTIVE).exists()
    (returned,) = events("person.returned")
    assert returned.data["source"] == SOURCE


def test_a_new_manager_is_a_move(scim) -> None:
    old_boss = UserFactory(email="old@example.com", display_name="Old Boss")
    new_boss = UserFactory(email="new@example.com", display_name="New Boss")
    made = created(scim, entra_user(**{ENTERPRISE: {"manager": {"value": str(old_boss.pk)}}}))

    scim.patch(
        f"Users/{made['id']}",
        patch({"op": "Add", "path": f"{ENTERPRISE}:manager", "value": {"value": str(new_boss.pk)}}),
    )

    (moved,) = events("person.moved")
    assert moved.data["manager"] == {"before": "Old Boss", "after": "New Boss"}
    assert moved.data["source"] == SOURCE
    # The same manager again changes nothing.
    scim.put(
        f"Users/{made['id']}", entra_user(**{ENTERPRISE: {"manager": {"value": str(new_boss.pk)}}})
    )
    assert len(events("person.moved")) == 1


def test_delete_is_a_leave_then_the_person_is_hidden(scim) -> None:
    made = created(scim, okta_user())
    person = User.objects.get(pk=int(made["id"]))
    _signed_in(person)

    scim.delete(f"Users/{person.pk}")

    assert [e.action for e in events("person.left")] == ["person.left"]
    assert events("person.left")[0].data["reason"] == "deleted in the directory"
    assert not Session.objects.filter(user_id=person.pk).exists()
    assert events("scim.user.deleted")[0].sequence > events("person.left")[0].sequence


def test_a_rehire_returns(scim) -> None:
    made = created(scim, okta_user())
    scim.delete(f"Users/{made['id']}")
    created(scim, okta_user())
    assert [e.data["source"] for e in events("person.returned")] == [SOURCE]


def test_deleting_a_group_moves_its_members_out(scim) -> None:
    person = created(scim, okta_user())
    group = scim.post(
        "Groups",
        {"schemas": [GROUP], "displayName": "Payments", "members": [{"value": person["id"]}]},
    ).json()

    scim.delete(f"Groups/{group['id']}")

    moves = events("person.moved")
    assert [m.data["team"] for m in moves] == [
        {"before": None, "after": "Payments"},
        {"before": "Payments", "after": None},
    ]
