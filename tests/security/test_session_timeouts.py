"""Sessions end when idle for SESSION_IDLE_SECONDS or older than SESSION_COOKIE_AGE, however
busy (ASVS 7.3.1, 7.3.2); the key rotates at sign-in and again after the second factor (7.2.4)."""

from __future__ import annotations

import time

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from audit.models import AuditEvent
from portal.middleware import SEEN_AT, SIGNED_IN_AT
from tests.conftest import current_code, enrol_totp, password_login

pytestmark = pytest.mark.django_db


def _shift(client: Client, **seconds_ago: int) -> None:
    """Move the session's stamps into the past, as if time had passed."""
    session = client.session
    clock = int(time.time())
    for key, ago in seconds_ago.items():
        session[key] = clock - ago
    session.save()


def test_an_idle_session_ends_and_says_why(settings, verified_client, requester) -> None:
    settings.SESSION_IDLE_SECONDS = 1800
    client = verified_client(requester)
    assert client.get("/").status_code == 200
    _shift(client, **{SEEN_AT: 1801})

    response = client.get("/access/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/access/")
    page = client.get(response["Location"])
    assert "Your session ended after 30 minutes without activity." in page.content.decode()
    assert client.get("/").status_code == 302  # still signed out
    event = AuditEvent.objects.get(action="auth.session.expired")
    assert event.actor_id == requester.pk and event.data["reason"] == "idle"


def test_activity_keeps_a_session_alive_but_not_past_its_lifetime(
    settings, verified_client, requester
) -> None:
    settings.SESSION_IDLE_SECONDS = 1800
    settings.SESSION_COOKIE_AGE = 12 * 3600
    client = verified_client(requester)
    _shift(client, **{SEEN_AT: 1700, SIGNED_IN_AT: 11 * 3600})
    assert client.get("/").status_code == 200
    # The request counted as activity: the idle clock starts again.
    assert int(time.time()) - client.session[SEEN_AT] < 5
    assert client.get("/").status_code == 200

    _shift(client, **{SIGNED_IN_AT: 12 * 3600 + 1})
    response = client.get("/")
    assert response.status_code == 302
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert messages == [
        "You were signed in for 12 hours, the longest a sign-in lasts. Sign in again to carry on."
    ]
    assert AuditEvent.objects.get(action="auth.session.expired").data["reason"] == "lifetime"


def test_a_session_ending_refuses_a_post_and_changes_nothing(
    settings, verified_client, requester, owner
) -> None:
    from accessreq.states import RequestState
    from tests.accessreq.workflow_helpers import make_entitlement, submit

    pending = submit(requester, make_entitlement(owners=[owner]))
    settings.SESSION_IDLE_SECONDS = 60
    client = verified_client(requester)
    _shift(client, **{SEEN_AT: 61})
    response = client.post(f"/requests/{pending.pk}/withdraw/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    pending.refresh_from_db()
    assert pending.state == RequestState.PENDING


def test_the_session_key_rotates_at_sign_in_and_after_the_second_factor(requester) -> None:
    device = enrol_totp(requester)
    client = Client()
    client.get("/accounts/login/")
    anonymous_key = client.session.session_key
    password_login(client, requester)
    after_password = client.cookies["sessionid"].value
    assert after_password != anonymous_key
    response = client.post("/mfa/verify/", {"code": current_code(device)})
    assert response.status_code == 302
    after_code = client.cookies["sessionid"].value
    assert after_code != after_password
    assert client.get("/").status_code == 200
