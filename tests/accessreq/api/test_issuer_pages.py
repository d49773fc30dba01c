"""Trusted CI issuers: security admins add and change them, auditors read, others get 404."""

from __future__ import annotations

from collections.abc import Callable

from django.test import Client

from accessreq.models import TrustedIssuer
from audit.models import AuditEvent
from portal.models import User

Verified = Callable[[User], Client]
URL = "/service-accounts/issuers/"
GITHUB = {
    "name": "GitHub Actions",
    "issuer": "https://token.actions.githubusercontent.com",
    "audience": "gatehouse",
    "jwks_url": "https://token.actions.githubusercontent.com/.well-known/jwks",
    "claim_format": "github",
    "is_active": "on",
}


def test_anonymous_is_sent_to_sign_in(db: None) -> None:
    assert Client().get(URL)["Location"].startswith("/accounts/login/")


def test_outsider_gets_404(verified_client: Verified, outsider: User) -> None:
    client = verified_client(outsider)
    assert client.get(URL).status_code == 404
    assert client.post(URL, GITHUB).status_code == 404
    assert not TrustedIssuer.objects.exists()


def test_security_admin_adds_an_issuer(verified_client: Verified, security_admin: User) -> None:
    response = verified_client(security_admin).post(URL, GITHUB, follow=True)
    assert "GitHub Actions is trusted" in response.content.decode()
    issuer = TrustedIssuer.objects.get()
    event = AuditEvent.objects.get(action="api.issuer.created")
    assert event.actor_id == security_admin.pk
    assert event.data["after"]["jwks_url"] == GITHUB["jwks_url"]
    assert event.target_id == str(issuer.pk)


def test_plain_http_key_urls_are_refused(verified_client: Verified, security_admin: User) -> None:
    response = verified_client(security_admin).post(
        URL, {**GITHUB, "jwks_url": "http://keys.example.com/jwks"}
    )
    assert response.status_code == 400
    assert "must use https" in response.content.decode()
    assert not TrustedIssuer.objects.exists()


def test_security_admin_pauses_an_issuer(verified_client: Verified, security_admin: User) -> None:
    client = verified_client(security_admin)
    client.post(URL, GITHUB)
    issuer = TrustedIssuer.objects.get()
    client.post(f"{URL}{issuer.pk}/", {**GITHUB, "is_active": ""})
    issuer.refresh_from_db()
    assert issuer.is_active is False
    event = AuditEvent.objects.get(action="api.issuer.changed")
    assert event.data["changes"] == {"is_active": {"from": True, "to": False}}
    assert "Paused" in client.get(URL).content.decode()


def test_auditor_reads_but_cannot_add_or_edit(
    verified_client: Verified, auditor: User, security_admin: User
) -> None:
    verified_client(security_admin).post(URL, GITHUB)
    issuer = TrustedIssuer.objects.get()
    client = verified_client(auditor)
    page = client.get(URL).content.decode()
    assert "GitHub Actions" in page and "Add an issuer" not in page
    assert client.post(URL, {**GITHUB, "name": "Other"}).status_code == 404
    assert client.get(f"{URL}{issuer.pk}/").status_code == 404
    assert TrustedIssuer.objects.count() == 1
