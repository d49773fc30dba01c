"""Deactivating a person, or a leaver event, makes every live session of theirs anonymous on its
next request, and deactivating a service account makes every token of it refused (ASVS 7.4.2;
issue 15, point 3). The directory's own push is in tests/scim/test_leaver_end_to_end.py."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from accessreq.services.lifecycle import person_deactivate, person_leave
from accessreq.services.tokens import token_issue
from portal.models import Session
from tests.accessreq.api.conftest import make_service_account
from tests.accessreq.workflow_helpers import FRESH

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("change", ["leave", "deactivate"])
def test_every_session_of_the_person_is_signed_out(
    change, verified_client, requester, security_admin
) -> None:
    laptop, phone = verified_client(requester), verified_client(requester)
    bystander = verified_client(security_admin)
    for client in (laptop, phone, bystander):
        assert client.get("/").status_code == 200
    if change == "leave":
        person_leave(user=requester, actor=security_admin, reason="left", source="admin")
    else:
        person_deactivate(user=requester, actor=security_admin, reason="paused", source="admin")

    assert not Session.objects.filter(user_id=requester.pk).exists()
    for client in (laptop, phone):
        response = client.get("/access/")
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
        assert not response.wsgi_request.user.is_authenticated
    assert bystander.get("/").status_code == 200


def test_every_token_of_a_deactivated_service_account_is_refused(owner, security_admin) -> None:
    account = make_service_account("payments-deployer", owner)
    tokens = [
        token_issue(
            actor=owner, service_account=account, kind="minted", name=f"token {n}", mfa=FRESH
        ).secret
        for n in range(2)
    ]

    def whoami(secret: str) -> int:
        return Client().get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code

    assert [whoami(t) for t in tokens] == [200, 200]
    person_deactivate(user=account, actor=security_admin, reason="retired", source="admin")
    for secret in tokens:
        response = Client().get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {secret}")
        assert response.status_code == 401
        assert json.loads(response.content)["error"]["code"] == "account_inactive"
