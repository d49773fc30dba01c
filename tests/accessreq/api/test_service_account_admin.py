"""Security admins create service accounts in the portal and name their owners; owners and
security admins change the owners; nobody else can, and nobody can leave an account ownerless."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from audit.models import AuditEvent
from portal.models import User
from tests.accessreq.api.conftest import make_service_account

Verified = Callable[[User], Client]
pytestmark = pytest.mark.django_db


def _create(client: Client, **fields: str) -> Any:
    body = {"name": "payments-deployer", "owners": "omar@example.com", "description": "", **fields}
    return client.post("/service-accounts/", body)


def test_anonymous_cannot_create(owner: User) -> None:
    response = _create(Client())
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert not User.objects.filter(kind=User.Kind.SERVICE).exists()


def test_a_person_without_the_role_gets_404(verified_client: Verified, owner: User) -> None:
    assert _create(verified_client(owner)).status_code == 404
    assert not User.objects.filter(kind=User.Kind.SERVICE).exists()


def test_an_auditor_reads_but_cannot_create(verified_client: Verified, auditor, owner) -> None:
    client = verified_client(auditor)
    assert "New service account" not in client.get("/service-accounts/").content.decode()
    assert _create(client).status_code == 404


def test_security_admin_creates_one_that_can_never_sign_in(
    verified_client: Verified, security_admin: User, owner: User, manager: User
) -> None:
    client = verified_client(security_admin)
    page = client.get("/service-accounts/").content.decode()
    assert "New service account" in page
    response = _create(
        client,
        name="Payments-Deployer",
        owners="omar@example.com, MINA@example.com",
        description="Deploys payments from CI",
    )
    account = User.objects.get(kind=User.Kind.SERVICE)
    assert response.status_code == 302
    assert response["Location"] == f"/service-accounts/{account.pk}/"
    assert account.email == "payments-deployer@service.invalid"
    assert not account.has_usable_password()
    assert set(account.owners.all()) == {owner, manager}
    event = AuditEvent.objects.get(action="service_account.created")
    assert event.actor_id == security_admin.pk and event.target_id == str(account.pk)
    assert event.data["owners"] == ["mina@example.com", "omar@example.com"]
    detail = client.get(response["Location"]).content.decode()
    assert "Created payments-deployer" in detail


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "Payments Deployer!"}, "lower-case letters, digits and hyphens"),
        ({"owners": "nobody@example.com"}, "No active person has the address nobody@example.com"),
        ({"owners": " , "}, "Name at least one owner"),
    ],
)
def test_bad_input_is_named_and_creates_nothing(
    verified_client: Verified, security_admin: User, owner: User, fields, message
) -> None:
    response = _create(verified_client(security_admin), **fields)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not User.objects.filter(kind=User.Kind.SERVICE).exists()
    assert not AuditEvent.objects.filter(action="service_account.created").exists()


def test_a_second_account_of_the_same_name_is_refused(
    verified_client: Verified, security_admin: User, owner: User
) -> None:
    client = verified_client(security_admin)
    assert _create(client).status_code == 302
    response = _create(client)
    assert response.status_code == 400
    assert "already exists" in response.content.decode()
    assert User.objects.filter(kind=User.Kind.SERVICE).count() == 1


def test_a_service_account_cannot_own_another(
    verified_client: Verified, security_admin: User, owner: User
) -> None:
    bot = make_service_account("old-bot", owner)
    response = _create(verified_client(security_admin), owners=bot.email)
    assert response.status_code == 400
    assert f"No active person has the address {bot.email}" in response.content.decode()


def test_an_owner_hands_the_account_to_a_colleague(
    verified_client: Verified, owner: User, manager: User
) -> None:
    account = make_service_account("nightly-deployer", owner)
    client = verified_client(owner)
    page = client.get(f"/service-accounts/{account.pk}/").content.decode()
    assert "Save owners" in page and "omar@example.com" in page
    response = client.post(
        f"/service-accounts/{account.pk}/owners/", {"owners": "mina@example.com"}, follow=True
    )
    assert "The owners of nightly-deployer are saved." in response.content.decode()
    assert list(account.owners.all()) == [manager]
    event = AuditEvent.objects.get(action="service_account.owners_changed")
    assert event.data == {"from": ["omar@example.com"], "to": ["mina@example.com"]}
    assert event.actor_id == owner.pk
    # No longer an owner: the account is gone from their view.
    assert client.get(f"/service-accounts/{account.pk}/").status_code == 404


def test_outsiders_cannot_change_owners(
    verified_client: Verified, owner: User, outsider: User
) -> None:
    account = make_service_account("nightly-deployer", owner)
    response = verified_client(outsider).post(
        f"/service-accounts/{account.pk}/owners/", {"owners": outsider.email}
    )
    assert response.status_code == 404
    assert list(account.owners.all()) == [owner]
    assert not AuditEvent.objects.filter(action="service_account.owners_changed").exists()


def test_nobody_leaves_an_account_without_owners(
    verified_client: Verified, security_admin: User, owner: User
) -> None:
    account = make_service_account("nightly-deployer", owner)
    response = verified_client(security_admin).post(
        f"/service-accounts/{account.pk}/owners/", {"owners": ""}
    )
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert list(account.owners.all()) == [owner]
