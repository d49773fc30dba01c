"""meta.version as ETag, and If-Match on writes (RFC 7644 §3.14)."""

from __future__ import annotations

import pytest

from portal.models import User
from tests.scim.conftest import GROUP, assert_error, created, okta_user, patch

pytestmark = pytest.mark.django_db

DEACTIVATE = patch({"op": "replace", "value": {"active": False}})


def test_a_write_on_a_stale_version_is_412_and_changes_nothing(scim) -> None:
    made = created(scim, okta_user())
    scim.patch(f"Users/{made['id']}", patch({"op": "replace", "path": "displayName", "value": "A"}))

    response = scim.patch(
        f"Users/{made['id']}", DEACTIVATE, **{"If-Match": made["meta"]["version"]}
    )

    assert_error(response, 412)
    assert User.objects.get(pk=int(made["id"])).is_active
    assert_error(scim.delete(f"Users/{made['id']}", **{"If-Match": made["meta"]["version"]}), 412)


def test_a_write_on_the_current_version_goes_ahead(scim) -> None:
    made = created(scim, okta_user())
    current = scim.get(f"Users/{made['id']}")["ETag"]

    response = scim.patch(f"Users/{made['id']}", DEACTIVATE, **{"If-Match": current})

    assert response.status_code == 200
    assert response["ETag"] != current
    assert scim.patch(f"Users/{made['id']}", DEACTIVATE, **{"If-Match": "*"}).status_code == 200


def test_groups_have_versions_too(scim) -> None:
    group = scim.post("Groups", {"schemas": [GROUP], "displayName": "Payments"}).json()
    scim.patch(
        f"Groups/{group['id']}", patch({"op": "replace", "path": "displayName", "value": "P"})
    )
    stale = {"If-Match": group["meta"]["version"]}
    assert_error(scim.put(f"Groups/{group['id']}", {"displayName": "Q"}, **stale), 412)
