"""Two directory requests at once, for real (threads with their own connections): the same
person created twice is one person and one 409; the same person deactivated twice leaves once."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from django.test import Client

from portal.models import User
from tests.accessreq.workflow_helpers import run_together
from tests.scim.conftest import events, mint, okta_user, patch

pytestmark = pytest.mark.django_db(transaction=True)


def _call(secret: str, method: str, path: str, body: dict) -> int:
    response = getattr(Client(), method)(
        f"/scim/v2/{path}",
        data=json.dumps(body),
        content_type="application/scim+json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    return int(response.status_code)


def test_the_same_person_created_twice_at_once(signing_key_file) -> None:
    secret = mint().secret
    outcomes = run_together([lambda: _call(secret, "post", "Users", okta_user()) for _ in range(4)])

    assert [o.error for o in outcomes] == [None] * 4
    assert Counter(o.result for o in outcomes) == {201: 1, 409: 3}
    assert User.objects.filter(email="ada@example.com").count() == 1
    assert len(events("user.created")) == 1


def test_the_same_person_deactivated_twice_at_once(signing_key_file) -> None:
    secret = mint().secret
    assert _call(secret, "post", "Users", okta_user()) == 201
    person = User.objects.get(email="ada@example.com")
    body = patch({"op": "replace", "value": {"active": False}})

    outcomes = run_together(
        [lambda: _call(secret, "patch", f"Users/{person.pk}", body) for _ in range(3)]
    )

    assert [o.result for o in outcomes] == [200, 200, 200]
    person.refresh_from_db()
    assert not person.is_active
    assert len(events("person.left")) == 1
