"""Service account pages: owners see theirs, mint (shown once), revoke, rotate and manage trust
rules; security admins see and revoke all; auditors read; everyone else gets 404."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from django.test import Client

from accessreq.models import ApiToken, TrustedIssuer, TrustRule
from accessreq.services.tokens import token_digest
from audit.models import AuditEvent
from portal.models import TOTPDevice, User
from tests.accessreq.api.conftest import Pipeline, api_get, make_service_account, minted
from tests.conftest import current_code

Verified = Callable[[User], Client]


def detail_url(pipeline: Pipeline) -> str:
    return f"/service-accounts/{pipeline.account.pk}/"


def last_event() -> AuditEvent:
    event = AuditEvent.objects.order_by("-sequence").first()
    assert event is not None
    return event


@pytest.mark.parametrize(
    "path",
    ["/service-accounts/", "/service-accounts/{id}/", "/service-accounts/issuers/"],
)
def test_anonymous_is_sent_to_sign_in(pipeline: Pipeline, path: str) -> None:
    response = Client().get(path.format(id=pipeline.account.pk))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_owner_sees_their_accounts_in_the_list_and_nav(
    pipeline: Pipeline, verified_client: Verified, outsider: User
) -> None:
    make_service_account("someone-elses-bot", outsider)
    page = verified_client(pipeline.owner).get("/service-accounts/").content.decode()
    assert "payments-deployer" in page
    assert "someone-elses-bot" not in page
    assert 'href="/service-accounts/"' in page  # the Pipelines nav entry


def test_outsider_gets_404_for_someone_elses_account(
    pipeline: Pipeline, verified_client: Verified, outsider: User
) -> None:
    client = verified_client(outsider)
    assert "payments-deployer" not in client.get("/service-accounts/").content.decode()
    assert client.get(detail_url(pipeline)).status_code == 404
    issued = minted(pipeline)
    for path in (
        f"{detail_url(pipeline)}tokens/",
        f"{detail_url(pipeline)}tokens/{issued.token.pk}/revoke/",
        f"{detail_url(pipeline)}tokens/{issued.token.pk}/rotate/",
        f"{detail_url(pipeline)}trust-rules/",
        f"{detail_url(pipeline)}trust-rules/{pipeline.rule.pk}/delete/",
    ):
        assert client.post(path, {"name": "x", "lifetime_days": 1}).status_code == 404, path
    assert ApiToken.objects.count() == 1
    assert TrustRule.objects.count() == 1
    assert api_get(Client(), "/api/v1/me", token=issued.secret).status_code == 200


def test_people_without_accounts_are_told_how_they_get_one(
    pipeline: Pipeline, verified_client: Verified, outsider: User
) -> None:
    page = verified_client(outsider).get("/service-accounts/").content.decode()
    assert "You own no service accounts" in page
    assert "/api/v1/docs" in page


def test_owner_mints_a_token_shown_once(pipeline: Pipeline, verified_client: Verified) -> None:
    client = verified_client(pipeline.owner)
    response = client.post(
        f"{detail_url(pipeline)}tokens/", {"name": "nightly-deploy", "lifetime_days": 7}
    )

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    token = ApiToken.objects.get()
    secret = response.context["issued"].secret
    assert token.digest == token_digest(secret)
    assert secret in response.content.decode()
    assert "only time" in response.content.decode()
    event = last_event()
    assert event.action == "api.token.minted" and event.actor_id == pipeline.owner.pk
    assert secret not in str(event.data)

    page = client.get(detail_url(pipeline)).content.decode()
    assert token.prefix in page and secret not in page
    assert api_get(Client(), "/api/v1/me", token=secret).status_code == 200


def test_mint_refuses_a_lifetime_over_the_maximum(
    pipeline: Pipeline, verified_client: Verified
) -> None:
    response = verified_client(pipeline.owner).post(
        f"{detail_url(pipeline)}tokens/", {"name": "x", "lifetime_days": 31}
    )
    assert response.status_code == 400
    assert "less than or equal to 30" in response.content.decode()
    assert not ApiToken.objects.exists()


def test_owner_rotates_and_the_old_secret_stops_working(
    pipeline: Pipeline, verified_client: Verified
) -> None:
    old = minted(pipeline)
    response = verified_client(pipeline.owner).post(
        f"{detail_url(pipeline)}tokens/{old.token.pk}/rotate/"
    )
    assert response.status_code == 200
    new_secret = response.context["issued"].secret
    assert new_secret in response.content.decode()
    assert "old token was revoked" in response.content.decode()
    assert last_event().action == "api.token.rotated"
    assert api_get(Client(), "/api/v1/me", token=old.secret).status_code == 401
    assert api_get(Client(), "/api/v1/me", token=new_secret).status_code == 200


def stale(client: Client) -> Client:
    """The session's second factor was verified an hour ago: enough to browse, not to mint."""
    session = client.session
    session["mfa_verified_at"] = time.time() - 3600
    session.save()
    return client


def test_minting_after_a_stale_second_factor_asks_for_a_code(
    pipeline: Pipeline, verified_client: Verified
) -> None:
    client = stale(verified_client(pipeline.owner))
    page = client.get(detail_url(pipeline)).content.decode()
    assert 'name="code"' in page and "Authenticator code" in page

    body = {"name": "nightly-deploy", "lifetime_days": 7}
    refused = client.post(f"{detail_url(pipeline)}tokens/", body)
    assert refused.status_code == 400
    assert "minting a long-lived token needs a fresh second factor" in refused.content.decode()
    assert not ApiToken.objects.exists()
    assert not AuditEvent.objects.filter(action="api.token.minted").exists()

    device = TOTPDevice.objects.get(user=pipeline.owner)
    minted_page = client.post(
        f"{detail_url(pipeline)}tokens/", {**body, "code": current_code(device)}
    )
    assert minted_page.status_code == 200
    assert ApiToken.objects.get().name == "nightly-deploy"
    event = last_event()
    assert event.action == "api.token.minted"
    assert event.mfa_method == "totp" and event.mfa_age_seconds is not None
    assert event.mfa_age_seconds < 60

    # A wrong code mints nothing (the session counts as fresh again, so make it stale first).
    wrong = stale(client).post(f"{detail_url(pipeline)}tokens/", {**body, "code": "000000"})
    assert wrong.status_code == 400
    assert ApiToken.objects.count() == 1


def test_rotating_after_a_stale_second_factor_needs_a_code(
    pipeline: Pipeline, verified_client: Verified
) -> None:
    old = minted(pipeline)
    client = stale(verified_client(pipeline.owner))
    url = f"{detail_url(pipeline)}tokens/{old.token.pk}/rotate/"
    refused = client.post(url, follow=True)
    assert "Rotating a long-lived token needs a fresh second factor" in refused.content.decode()
    assert f'id="rotate-code-{old.token.pk}"' in refused.content.decode()
    assert api_get(Client(), "/api/v1/me", token=old.secret).status_code == 200
    assert ApiToken.objects.count() == 1

    device = TOTPDevice.objects.get(user=pipeline.owner)
    rotated = client.post(url, {"code": current_code(device)})
    assert rotated.status_code == 200
    assert last_event().action == "api.token.rotated"
    assert api_get(Client(), "/api/v1/me", token=old.secret).status_code == 401


def test_owner_revokes_with_a_reason(pipeline: Pipeline, verified_client: Verified) -> None:
    issued = minted(pipeline)
    client = verified_client(pipeline.owner)
    response = client.post(
        f"{detail_url(pipeline)}tokens/{issued.token.pk}/revoke/",
        {"reason": "pasted into a ticket"},
        follow=True,
    )
    assert f"Revoked {issued.token.prefix}" in response.content.decode()
    assert "pasted into a ticket" in response.content.decode()
    event = last_event()
    assert event.action == "api.token.revoked" and event.data["reason"] == "pasted into a ticket"
    assert api_get(Client(), "/api/v1/me", token=issued.secret).status_code == 401


def test_security_admin_revokes_but_does_not_mint(
    pipeline: Pipeline, verified_client: Verified, security_admin: User
) -> None:
    issued = minted(pipeline)
    client = verified_client(security_admin)
    page = client.get(detail_url(pipeline)).content.decode()
    assert "Mint a token" not in page and "Revoke" in page
    mint = client.post(f"{detail_url(pipeline)}tokens/", {"name": "x", "lifetime_days": 1})
    assert mint.status_code == 404  # only owners mint; to others the action does not exist
    assert ApiToken.objects.count() == 1
    client.post(f"{detail_url(pipeline)}tokens/{issued.token.pk}/revoke/", {"reason": "incident"})
    assert last_event().action == "api.token.revoked"


def test_auditor_reads_without_buttons(
    pipeline: Pipeline, verified_client: Verified, auditor: User
) -> None:
    minted(pipeline)
    client = verified_client(auditor)
    page = client.get(detail_url(pipeline)).content.decode()
    assert "payments-deployer" in page
    assert "Mint a token" not in page and ">Revoke<" not in page and "Add a trust rule" not in page
    issued = ApiToken.objects.get()
    client.post(f"{detail_url(pipeline)}tokens/{issued.pk}/revoke/")
    issued.refresh_from_db()
    assert issued.revoked_at is None


def test_owner_adds_and_removes_a_trust_rule(
    pipeline: Pipeline, verified_client: Verified, github_issuer: TrustedIssuer
) -> None:
    client = verified_client(pipeline.owner)
    response = client.post(
        f"{detail_url(pipeline)}trust-rules/",
        {
            "issuer": github_issuer.pk,
            "repository": "acme/infra",
            "ref": "refs/tags/v*",
            "environment": "production",
            "workflow": "",
        },
        follow=True,
    )
    assert "Jobs of acme/infra" in response.content.decode()
    rule = TrustRule.objects.get(repository="acme/infra")
    assert rule.created_by == pipeline.owner
    event = last_event()
    assert event.action == "api.trust_rule.created" and event.data["ref"] == "refs/tags/v*"

    client.post(f"{detail_url(pipeline)}trust-rules/{rule.pk}/delete/")
    assert not TrustRule.objects.filter(pk=rule.pk).exists()
    assert last_event().action == "api.trust_rule.deleted"


def test_trust_rule_needs_owner_slash_name(
    pipeline: Pipeline, verified_client: Verified, github_issuer: TrustedIssuer
) -> None:
    response = verified_client(pipeline.owner).post(
        f"{detail_url(pipeline)}trust-rules/",
        {"issuer": github_issuer.pk, "repository": "infra"},
        follow=True,
    )
    assert "owner/name" in response.content.decode()
    assert TrustRule.objects.count() == 1


def test_gets_to_post_only_pages_are_refused(pipeline: Pipeline, verified_client: Verified) -> None:
    response = verified_client(pipeline.owner).get(f"{detail_url(pipeline)}tokens/")
    assert response.status_code == 405


def test_a_service_account_never_signs_in_to_the_web_ui(pipeline: Pipeline) -> None:
    account = pipeline.account
    account.set_password("a password someone set by mistake")
    account.save()
    client = Client()
    response = client.post(
        "/accounts/login/",
        {"login": account.email, "password": "a password someone set by mistake"},
    )
    assert response.status_code == 200  # the form again, not a redirect onwards
    assert "_auth_user_id" not in client.session
