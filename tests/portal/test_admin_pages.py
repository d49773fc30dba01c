"""Every admin list, add and change page opens for a verified security admin: no 500 from a
field list that no longer matches its model (the add-person form once asked for a field the
custom User lacks)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.urls import reverse

from audit.models import AuditEvent
from portal.models import User
from portal.roles import SECURITY_ADMIN

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_data(security_admin) -> None:
    call_command("seed_demo", "--no-personas", stdout=StringIO())


def _admin_urls(name: str, model: type) -> str:
    return f"admin:{model._meta.app_label}_{model._meta.model_name}_{name}"


def test_every_admin_page_opens_for_a_security_admin(
    demo_data, verified_client, security_admin
) -> None:
    client = verified_client(security_admin)
    opened: dict[int, int] = {}
    failures: list[str] = []
    for model in admin.site._registry:
        label = model._meta.label
        pages = [("changelist", reverse(_admin_urls("changelist", model)))]
        pages.append(("add", reverse(_admin_urls("add", model))))
        obj = model._default_manager.order_by("pk").first()
        if obj is not None:
            pages.append(("change", reverse(_admin_urls("change", model), args=[obj.pk])))
        for kind, url in pages:
            response = client.get(url)
            if response.status_code >= 500:
                failures.append(f"{label} {kind} {url}: {response.status_code}")
            opened[response.status_code] = opened.get(response.status_code, 0) + 1
    assert not failures, failures
    # Most pages are the security admin's to use (read-only ones answer 403 on "add").
    assert opened.get(200, 0) > 2 * opened.get(403, 0), opened


def test_security_admin_adds_a_person_with_a_password(verified_client, security_admin) -> None:
    client = verified_client(security_admin)
    page = client.get("/admin/portal/user/add/")
    assert page.status_code == 200
    assert "Password-based authentication" in page.content.decode()
    response = client.post(
        "/admin/portal/user/add/",
        {
            "email": "New.Joiner@Example.com",
            "display_name": "New Joiner",
            "usable_password": "true",
            "password1": "a-long-enough-passphrase-42",
            "password2": "a-long-enough-passphrase-42",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    person = User.objects.get(email="new.joiner@example.com")
    assert person.check_password("a-long-enough-passphrase-42")
    event = AuditEvent.objects.get(action="admin.object.created", target_id=str(person.pk))
    assert event.actor_id == security_admin.pk


def test_a_person_for_single_sign_on_gets_no_password(verified_client, security_admin) -> None:
    response = verified_client(security_admin).post(
        "/admin/portal/user/add/",
        {"email": "sso.only@example.com", "display_name": "SSO Only", "usable_password": "false"},
    )
    assert response.status_code == 302
    assert not User.objects.get(email="sso.only@example.com").has_usable_password()


def test_a_second_spelling_of_an_existing_email_is_refused(
    verified_client, security_admin, requester
) -> None:
    response = verified_client(security_admin).post(
        "/admin/portal/user/add/",
        {
            "email": requester.email.upper(),
            "display_name": "Copy",
            "usable_password": "false",
        },
    )
    assert response.status_code == 200
    assert "Someone with this email address already exists." in response.content.decode()
    assert User.objects.filter(email__iexact=requester.email).count() == 1


def test_people_without_the_role_cannot_add_people(verified_client, requester) -> None:
    assert not requester.groups.filter(name=SECURITY_ADMIN).exists()
    client = verified_client(requester)
    assert client.get("/admin/portal/user/add/").status_code == 302  # to the admin's sign-in
    response = client.post(
        "/admin/portal/user/add/",
        {"email": "sneaky@example.com", "display_name": "Sneaky", "usable_password": "false"},
    )
    assert response.status_code == 302
    assert not User.objects.filter(email="sneaky@example.com").exists()
