"""DELETE /Users/{id}: the person leaves, stays on record, and is gone for SCIM."""

from __future__ import annotations

import pytest

from portal.models import User
from scim.models import ScimIdentity
from tests.factories import UserFactory
from tests.scim.conftest import assert_error, created, events, okta_user

pytestmark = pytest.mark.django_db


def test_delete_is_a_leave_and_then_404(scim) -> None:
    made = created(scim, okta_user())

    response = scim.delete(f"Users/{made['id']}")

    assert response.status_code == 204 and response.content == b""
    person = User.objects.get(pk=int(made["id"]))  # never erased: the audit trail refers to it
    assert not person.is_active and person.employment_status == User.EmploymentStatus.LEFT
    assert ScimIdentity.objects.get(user=person).deleted_at is not None
    assert_error(scim.get(f"Users/{made['id']}"), 404)
    assert_error(scim.delete(f"Users/{made['id']}"), 404)
    assert scim.get('Users?filter=userName eq "ada@example.com"').json()["totalResults"] == 0
    (event,) = events("scim.user.deleted")
    assert event.data["scim_token"] == "okta-prod" and event.target_id == made["id"]


def test_a_person_made_outside_scim_can_be_deleted_too(scim) -> None:
    person = UserFactory(email="kim@example.com")
    assert scim.delete(f"Users/{person.pk}").status_code == 204
    person.refresh_from_db()
    assert not person.is_active


def test_the_directory_creating_a_deleted_person_again_links_the_same_row(scim) -> None:
    made = created(scim, okta_user())
    scim.delete(f"Users/{made['id']}")

    again = created(scim, okta_user(displayName="Ada L."))

    assert again["id"] == made["id"]
    assert again["active"] is True and again["displayName"] == "Ada L."
    assert User.objects.filter(email="ada@example.com").count() == 1
    assert len(events("scim.user.relinked")) == 1
