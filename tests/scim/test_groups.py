"""Groups are teams: create, look up, rename, membership by PATCH (Entra ID and Okta), delete.
A person is in one team at most, so joining a second group moves them."""

from __future__ import annotations

import pytest

from portal.models import Team, User
from tests.factories import TeamFactory, UserFactory
from tests.scim.conftest import GROUP, assert_error, created, events, okta_user, patch

pytestmark = pytest.mark.django_db


def _group(scim, name: str = "Payments", members: list[str] | None = None, **extra) -> dict:
    body = {"schemas": [GROUP], "displayName": name, **extra}
    if members is not None:
        body["members"] = [{"value": m} for m in members]
    response = scim.post("Groups", body)
    assert response.status_code == 201, response.content
    return response.json()


def _person(scim, email: str) -> str:
    return created(scim, okta_user(email, externalId=email))["id"]


def test_create_a_group_with_members(scim) -> None:
    ada = _person(scim, "ada@example.com")

    group = _group(scim, "Payments", [ada], externalId="entra-group-1")

    team = Team.objects.get(pk=int(group["id"]))
    assert team.name == "Payments" and team.slug == "payments"
    assert group["externalId"] == "entra-group-1"
    assert [m["value"] for m in group["members"]] == [ada]
    assert User.objects.get(pk=int(ada)).team == team
    assert events("scim.group.created")[0].data["source"] == "scim:okta-prod"
    person = scim.get(f"Users/{ada}").json()
    assert person["groups"] == [
        {"value": group["id"], "display": "Payments", "$ref": group["meta"]["location"]}
    ]


def test_a_taken_display_name_is_409(scim) -> None:
    TeamFactory(name="Payments", slug="payments")
    assert_error(
        scim.post("Groups", {"schemas": [GROUP], "displayName": "payments"}), 409, "uniqueness"
    )


def test_filter_by_display_name_finds_an_existing_team(scim) -> None:
    team = TeamFactory(name="Payments", slug="payments")
    TeamFactory(name="Platform", slug="platform")

    body = scim.get('Groups?filter=displayName eq "Payments"&excludedAttributes=members').json()

    assert body["totalResults"] == 1
    assert body["Resources"][0]["id"] == str(team.pk)
    assert "members" not in body["Resources"][0]


def test_entra_adds_and_removes_members(scim) -> None:
    ada, bob = _person(scim, "ada@example.com"), _person(scim, "bob@example.com")
    group = _group(scim)

    response = scim.patch(
        f"Groups/{group['id']}",
        patch({"op": "Add", "path": "members", "value": [{"value": ada}, {"value": bob}]}),
    )
    assert response.status_code == 200, response.content
    assert {m["value"] for m in response.json()["members"]} == {ada, bob}

    scim.patch(
        f"Groups/{group['id']}",
        patch({"op": "Remove", "path": "members", "value": [{"value": ada}]}),
    )
    assert User.objects.get(pk=int(ada)).team is None
    assert User.objects.get(pk=int(bob)).team_id == int(group["id"])


def test_okta_removes_a_member_by_path_filter_and_renames(scim) -> None:
    ada = _person(scim, "ada@example.com")
    group = _group(scim, "Payments", [ada])

    scim.patch(
        f"Groups/{group['id']}",
        patch(
            {"op": "remove", "path": f'members[value eq "{ada}"]'},
            {"op": "replace", "value": {"id": group["id"], "displayName": "Payments Core"}},
        ),
    )

    assert User.objects.get(pk=int(ada)).team is None
    assert Team.objects.get(pk=int(group["id"])).name == "Payments Core"
    (event,) = events("scim.group.changed")
    assert event.data["changes"]["displayName"] == {"before": "Payments", "after": "Payments Core"}


def test_a_second_group_moves_the_person_and_the_first_group_loses_them(scim) -> None:
    ada = _person(scim, "ada@example.com")
    first = _group(scim, "Payments", [ada])
    second = _group(scim, "Platform")

    scim.patch(
        f"Groups/{second['id']}", patch({"op": "add", "path": "members", "value": [{"value": ada}]})
    )

    assert User.objects.get(pk=int(ada)).team_id == int(second["id"])
    assert scim.get(f"Groups/{first['id']}").json()["members"] == []
    # Removing them from the group they already left changes nothing.
    scim.patch(
        f"Groups/{first['id']}", patch({"op": "remove", "path": f'members[value eq "{ada}"]'})
    )
    assert User.objects.get(pk=int(ada)).team_id == int(second["id"])


def test_replace_members_sets_exactly_those(scim) -> None:
    ada, bob = _person(scim, "ada@example.com"), _person(scim, "bob@example.com")
    group = _group(scim, "Payments", [ada])

    body = scim.patch(
        f"Groups/{group['id']}",
        patch({"op": "replace", "path": "members", "value": [{"value": bob}]}),
    ).json()

    assert [m["value"] for m in body["members"]] == [bob]
    assert User.objects.get(pk=int(ada)).team is None


def test_put_replaces_name_and_members(scim) -> None:
    ada, bob = _person(scim, "ada@example.com"), _person(scim, "bob@example.com")
    group = _group(scim, "Payments", [ada])

    response = scim.put(
        f"Groups/{group['id']}",
        {"schemas": [GROUP], "displayName": "Payments", "members": [{"value": bob}]},
    )

    assert [m["value"] for m in response.json()["members"]] == [bob]


def test_an_unknown_member_is_400_and_nothing_moves(scim) -> None:
    ada = _person(scim, "ada@example.com")
    group = _group(scim)
    service = UserFactory(email="deployer@service.invalid", kind=User.Kind.SERVICE)

    for member in ("424242", str(service.pk)):
        assert_error(
            scim.patch(
                f"Groups/{group['id']}",
                patch(
                    {"op": "add", "path": "members", "value": [{"value": ada}, {"value": member}]}
                ),
            ),
            400,
            "invalidValue",
        )
    assert User.objects.get(pk=int(ada)).team is None
    service.refresh_from_db()
    assert service.team_id != int(group["id"])


def test_an_unknown_group_is_404(scim) -> None:
    assert_error(scim.get("Groups/424242"), 404)
    assert_error(
        scim.patch("Groups/424242", patch({"op": "add", "path": "members", "value": []})), 404
    )
    assert_error(scim.delete("Groups/nope"), 404)


def test_delete_empties_the_team_and_hides_it(scim) -> None:
    ada = _person(scim, "ada@example.com")
    group = _group(scim, "Payments", [ada])

    assert scim.delete(f"Groups/{group['id']}").status_code == 204

    assert Team.objects.filter(pk=int(group["id"])).exists()  # entitlements and reports refer to it
    assert User.objects.get(pk=int(ada)).team is None
    assert_error(scim.get(f"Groups/{group['id']}"), 404)
    assert "groups" not in scim.get(f"Users/{ada}").json()
    assert events("scim.group.deleted")[0].data["members_removed"] is True
    again = _group(scim, "Payments")
    assert again["id"] == group["id"]


def test_group_pagination(scim) -> None:
    for n in range(5):
        TeamFactory(name=f"Team {n}", slug=f"team-{n}")
    body = scim.get("Groups?startIndex=2&count=2").json()
    assert (body["totalResults"], body["startIndex"], body["itemsPerPage"]) == (5, 2, 2)
    assert [r["displayName"] for r in body["Resources"]] == ["Team 1", "Team 2"]


@pytest.mark.parametrize(
    "expression", ['displayName sw "Pay"', 'members.display eq "x"', "displayName eq"]
)
def test_a_bad_group_filter_is_400(scim, expression) -> None:
    assert_error(scim.get(f"Groups?filter={expression}"), 400, "invalidFilter")
