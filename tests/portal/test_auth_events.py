"""Sign-in, sign-out and failed sign-in each write an audit event; no open sign-up."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from audit.models import AuditEvent
from tests.conftest import current_code, enrol_totp, password_login
from tests.factories import PASSWORD


@pytest.mark.django_db
def test_login_and_logout_are_recorded(client, requester) -> None:
    enrol_totp(requester)
    password_login(client, requester)
    client.post("/accounts/logout/")
    actions = list(
        AuditEvent.objects.filter(actor_id=requester.pk).values_list("action", flat=True)
    )
    assert actions == ["auth.login", "auth.logout"]


@pytest.mark.django_db
def test_failed_login_is_recorded_without_the_password(client, requester) -> None:
    response = client.post("/accounts/login/", {"login": requester.email, "password": "wrong-pw-1"})
    assert response.status_code == 200
    assert "not correct" in response.content.decode()
    event = AuditEvent.objects.get(action="auth.login.failed")
    assert event.actor_kind == "anonymous"
    assert event.data == {"email": requester.email}
    assert "wrong-pw-1" not in str(event.data)


@pytest.mark.django_db
def test_signup_is_closed(client) -> None:
    response = client.get("/accounts/signup/")
    assert response.status_code == 200
    assert "closed" in response.content.decode().lower()
    client.post(
        "/accounts/signup/",
        {"email": "new@example.com", "password1": "x" * 20, "password2": "x" * 20},
    )
    from portal.models import User

    assert not User.objects.filter(email="new@example.com").exists()


@pytest.mark.django_db
def test_password_reset_then_login_still_needs_the_second_factor(client, requester) -> None:
    device = enrol_totp(requester)
    client.post("/accounts/password/reset/", {"email": requester.email})
    assert len(mail.outbox) == 1
    link = re.search(r"https?://[^/\s]+(/accounts/password/reset/key/\S+)", mail.outbox[0].body)
    assert link, mail.outbox[0].body
    follow = client.get(link.group(1), follow=True)
    form_url = follow.redirect_chain[-1][0] if follow.redirect_chain else link.group(1)
    new_password = "a much longer new password 42"
    done = client.post(form_url, {"password1": new_password, "password2": new_password})
    assert done.status_code == 302
    # The reset neither signed the person in nor skipped the second factor.
    assert client.get("/").status_code == 302
    fresh = Client()
    password_login(fresh, requester, new_password)
    assert fresh.get("/")["Location"].startswith("/mfa/verify/")
    assert fresh.post("/mfa/verify/", {"code": current_code(device)}).status_code == 302
    assert fresh.get("/").status_code == 200
    assert AuditEvent.objects.filter(action="auth.password.reset", actor_id=requester.pk).exists()


@pytest.mark.django_db
def test_admin_has_no_login_form_of_its_own(client, security_admin) -> None:
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    enrol_totp(security_admin)
    client.post("/admin/login/", {"username": security_admin.email, "password": PASSWORD})
    assert client.get("/admin/").status_code == 302
