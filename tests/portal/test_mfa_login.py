"""Password alone never reaches a protected page; the second factor is enforced everywhere."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone
from django_otp.oath import totp

from audit.models import AuditEvent
from portal.models import TOTPDevice
from tests.conftest import current_code, enrol_totp, password_login

PROTECTED = [
    "/",
    "/catalog/",
    "/admin/",
    "/admin/portal/user/",
    "/account/security/",
    "/catalog/?q=payments&tier=high",
]


@pytest.mark.django_db
@pytest.mark.parametrize("path", PROTECTED)
def test_anonymous_is_sent_to_login(client: Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302
    assert (
        response["Location"].startswith("/accounts/login/")
        or "/admin/login/" in response["Location"]
    )


@pytest.mark.django_db
@pytest.mark.parametrize("path", PROTECTED)
def test_password_only_with_device_is_sent_to_verification(client, requester, path) -> None:
    enrol_totp(requester)
    requester.is_staff = True
    requester.save()
    password_login(client, requester)
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/mfa/verify/?next=")


@pytest.mark.django_db
def test_password_only_without_device_is_sent_to_enrolment(client, requester) -> None:
    password_login(client, requester)
    response = client.get("/catalog/")
    assert response.status_code == 302
    assert response["Location"] == "/mfa/enrol/?next=%2Fcatalog%2F"


@pytest.mark.django_db
def test_totp_code_verifies_rotates_session_and_reaches_deep_link(client, requester) -> None:
    device = enrol_totp(requester)
    password_login(client, requester)
    key_before = client.session.session_key
    response = client.post("/mfa/verify/", {"code": current_code(device), "next": "/catalog/"})
    assert response.status_code == 302
    assert response["Location"] == "/catalog/"
    assert client.session.session_key != key_before
    assert client.get("/catalog/").status_code == 200
    assert AuditEvent.objects.filter(action="auth.mfa.verified", actor_id=requester.pk).exists()


@pytest.mark.django_db
def test_reused_totp_code_is_refused(client, requester) -> None:
    device = enrol_totp(requester)
    code = current_code(device)
    password_login(client, requester)
    assert client.post("/mfa/verify/", {"code": code}).status_code == 302

    other = Client()
    password_login(other, requester)
    response = other.post("/mfa/verify/", {"code": code})
    assert response.status_code == 400
    assert "already been used" in response.content.decode()
    assert other.get("/").status_code == 302
    failed = AuditEvent.objects.filter(action="auth.mfa.failed", actor_id=requester.pk).last()
    assert failed is not None and failed.data == {"reason": "replayed"}


@pytest.mark.django_db
def test_wrong_codes_are_throttled_with_a_clear_message(client, requester, settings) -> None:
    settings.MFA_THROTTLE_FACTOR = 30
    device = enrol_totp(requester)
    password_login(client, requester)
    first = client.post(
        "/mfa/verify/", {"code": "000000" if current_code(device) != "000000" else "111111"}
    )
    assert first.status_code == 400
    assert "not right" in first.content.decode()
    # The right code is not even checked while throttled.
    second = client.post("/mfa/verify/", {"code": current_code(device)})
    assert second.status_code == 429
    # One wrong code is not "too many": the message says to wait and that nothing was checked.
    body = second.content.decode()
    assert "Too many" not in body
    assert "Wait 30 seconds, then enter the code again" in body and "was not checked" in body
    assert client.get("/").status_code == 302
    device.refresh_from_db()
    assert device.throttling_failure_count == 1


@pytest.mark.django_db
def test_after_several_wrong_codes_the_pause_is_called_too_many(
    client, requester, settings
) -> None:
    settings.MFA_THROTTLE_FACTOR = 30
    device = enrol_totp(requester)
    device.throttling_failure_count = 3
    device.throttling_failure_timestamp = timezone.now()
    device.save()
    password_login(client, requester)
    response = client.post("/mfa/verify/", {"code": current_code(device)})
    assert response.status_code == 429
    assert "Too many wrong codes. Wait" in response.content.decode()


@pytest.mark.django_db
def test_totp_secret_is_encrypted_at_rest(requester) -> None:
    device = enrol_totp(requester)
    stored = TOTPDevice.objects.values_list("encrypted_key", flat=True).get(pk=device.pk)
    assert device.bin_key.hex() not in stored
    assert device.base32_key not in stored
    assert stored.startswith("gAAAA")  # a Fernet token


@pytest.mark.django_db
def test_enrolment_shows_qr_and_secret_then_backup_codes_once(client, requester) -> None:
    password_login(client, requester)
    page = client.get("/mfa/enrol/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "<svg" in html
    device = TOTPDevice.objects.get(user=requester, confirmed=False)
    grouped = " ".join(device.base32_key[i : i + 4] for i in range(0, len(device.base32_key), 4))
    assert grouped in html

    code = f"{totp(device.bin_key):06d}"
    response = client.post("/mfa/enrol/", {"code": code})
    assert response.status_code == 302 and response["Location"] == "/mfa/backup-codes/"
    codes_page = client.get("/mfa/backup-codes/")
    assert codes_page.status_code == 200
    assert "no-store" in codes_page["Cache-Control"]
    assert codes_page.content.decode().count("<li><code>") == 10
    # Shown once: a second visit does not show them again.
    again = client.get("/mfa/backup-codes/")
    assert again.status_code == 302
    assert client.get("/").status_code == 200
    assert AuditEvent.objects.filter(action="auth.mfa.enrolled", actor_id=requester.pk).exists()


@pytest.mark.django_db
def test_backup_code_works_exactly_once(client, requester) -> None:
    password_login(client, requester)
    device = TOTPDevice.objects.none()
    client.get("/mfa/enrol/")
    device = TOTPDevice.objects.get(user=requester, confirmed=False)
    client.post("/mfa/enrol/", {"code": f"{totp(device.bin_key):06d}"})
    html = client.get("/mfa/backup-codes/").content.decode()
    first_code = html.split("<li><code>")[1].split("</code>")[0]
    client.post("/accounts/logout/")

    fresh = Client()
    password_login(fresh, requester)
    ok = fresh.post("/mfa/verify/", {"code": first_code.upper()})
    assert ok.status_code == 302
    assert fresh.get("/").status_code == 200
    assert AuditEvent.objects.filter(action="auth.mfa.backup_code_used").count() == 1

    again = Client()
    password_login(again, requester)
    refused = again.post("/mfa/verify/", {"code": first_code})
    assert refused.status_code == 400
    assert again.get("/").status_code == 302
