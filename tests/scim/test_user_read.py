"""GET /Users and /Users/{id}: lookups by filter, pagination, and what SCIM never shows."""

from __future__ import annotations

import pytest

from portal.models import User
from tests.factories import UserFactory
from tests.scim.conftest import LIST, assert_error, created, okta_user

pytestmark = pytest.mark.django_db


def test_get_by_id_shows_the_person(scim) -> None:
    person = UserFactory(email="kim@example.com", display_name="Kim Lee")

    response = scim.get(f"Users/{person.pk}")

    assert response.status_code == 200
    body = response.json()
    assert body["userName"] == "kim@example.com"
    assert body["emails"] == [{"value": "kim@example.com", "type": "work", "primary": True}]
    assert body["groups"][0]["display"] == person.team.name
    assert "externalId" not in body  # made outside SCIM, not linked yet
    assert response["ETag"] == body["meta"]["version"]


@pytest.mark.parametrize("user_id", ["999999", "abc", "-1"])
def test_an_unknown_id_is_404(scim, user_id) -> None:
    assert_error(scim.get(f"Users/{user_id}"), 404)


@pytest.mark.parametrize("kind", [User.Kind.SERVICE, User.Kind.SYSTEM])
def test_service_accounts_and_the_system_actor_are_404_and_unchangeable(scim, kind) -> None:
    account: User = (
        User.objects.system_actor()
        if kind == User.Kind.SYSTEM
        else UserFactory(email="deployer@service.invalid", kind=kind)
    )
    path = f"Users/{account.pk}"

    assert_error(scim.get(path), 404)
    assert_error(scim.put(path, okta_user(account.email)), 404)
    assert_error(
        scim.patch(
            path,
            {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "value": {"active": False}}],
            },
        ),
        404,
    )
    assert_error(scim.delete(path), 404)
    listed = scim.get(f'Users?filter=userName eq "{account.email}"').json()
    assert listed["totalResults"] == 0
    account.refresh_from_db()
    assert account.kind == kind


def test_a_superuser_is_out_of_the_directorys_reach(scim) -> None:
    admin = UserFactory(email="root@example.com", is_superuser=True)

    assert_error(scim.get(f"Users/{admin.pk}"), 404)
    assert scim.get("Users").json()["totalResults"] == 0


def test_filter_by_user_name_is_case_insensitive(scim) -> None:
    UserFactory(email="kim@example.com")
    UserFactory(email="lee@example.com")

    body = scim.get('Users?filter=userName eq "Kim@Example.COM"').json()

    assert body["schemas"] == [LIST]
    assert body["totalResults"] == 1
    assert [r["userName"] for r in body["Resources"]] == ["kim@example.com"]


def test_filter_by_external_id(scim) -> None:
    made = created(scim, okta_user())
    UserFactory(email="other@example.com")

    body = scim.get('Users?filter=externalId eq "00u1ab2cd3EF4gh5i6j7"').json()

    assert [r["id"] for r in body["Resources"]] == [made["id"]]
    assert scim.get('Users?filter=externalId eq "nobody"').json()["totalResults"] == 0


def test_no_match_is_an_empty_list(scim) -> None:
    body = scim.get('Users?filter=userName eq "nobody@example.com"').json()
    assert body == {
        "schemas": [LIST],
        "totalResults": 0,
        "startIndex": 1,
        "itemsPerPage": 0,
        "Resources": [],
    }


@pytest.mark.parametrize(
    "expression",
    [
        'userName co "kim"',
        "userName eq kim@example.com",
        "userName eq",
        'userName eq "kim" or userName eq "lee"',
        '(userName eq "kim")',
        'title eq "boss"',
        'userName eq "unterminated',
        'userName bogus "x"',
    ],
)
def test_a_malformed_or_unsupported_filter_is_400_invalid_filter(scim, expression) -> None:
    assert_error(scim.get(f"Users?filter={expression}"), 400, "invalidFilter")


def test_pagination_numbers(scim, settings) -> None:
    settings.SCIM_MAX_RESULTS = 4
    people = [UserFactory(email=f"p{n}@example.com") for n in range(7)]

    first = scim.get("Users?count=3").json()
    second = scim.get("Users?startIndex=4&count=3").json()
    last = scim.get("Users?startIndex=7&count=3").json()
    past = scim.get("Users?startIndex=20&count=3").json()
    capped = scim.get("Users?count=100").json()
    default = scim.get("Users").json()
    nothing = scim.get("Users?count=0").json()

    assert (first["totalResults"], first["startIndex"], first["itemsPerPage"]) == (7, 1, 3)
    assert [r["id"] for r in first["Resources"]] == [str(p.pk) for p in people[:3]]
    assert [r["id"] for r in second["Resources"]] == [str(p.pk) for p in people[3:6]]
    assert (last["startIndex"], last["itemsPerPage"]) == (7, 1)
    assert (past["totalResults"], past["itemsPerPage"], past["Resources"]) == (7, 0, [])
    assert capped["itemsPerPage"] == 4 == default["itemsPerPage"]
    assert (nothing["totalResults"], nothing["Resources"]) == (7, [])
    assert scim.get("Users?startIndex=0&count=1").json()["startIndex"] == 1
    assert_error(scim.get("Users?count=many"), 400, "invalidValue")


def test_listing_does_not_query_per_person(scim, django_assert_max_num_queries) -> None:
    boss = UserFactory(email="boss@example.com")
    for n in range(3):
        UserFactory(email=f"a{n}@example.com", manager=boss)
    with django_assert_max_num_queries(8) as few:
        scim.get("Users")
    for n in range(12):
        UserFactory(email=f"b{n}@example.com", manager=boss)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert scim.get("Users").json()["totalResults"] == 16


def test_attributes_and_excluded_attributes(scim) -> None:
    person = UserFactory(email="kim@example.com")

    only = scim.get(f"Users/{person.pk}?attributes=userName").json()
    without = scim.get(f"Users/{person.pk}?excludedAttributes=emails,groups").json()

    assert set(only) == {"schemas", "id", "meta", "userName"}
    assert "emails" not in without and "groups" not in without and "userName" in without
