"""Single sign-on against a real OpenID Connect provider (tests/oidc_provider, on loopback).

Each test signs in at the provider over HTTP, brings the provider's answer (code and state) back
to Gatehouse's callback in the Django test client, and Gatehouse exchanges the code at the
provider's token endpoint and reads the RS256-signed ID token, as in production.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from allauth.socialaccount.models import SocialAccount
from django.test import Client

from accessreq.models import Grant
from audit.models import AuditEvent
from portal.models import User
from tests.conftest import current_code, enrol_totp
from tests.factories import PASSWORD, UserFactory
from tests.oidc_provider.harness import (
    RunningProvider,
    configure,
    running_provider,
    sign_in_at_provider,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def idp() -> Iterator[RunningProvider]:
    with running_provider() as provider:
        yield provider


@pytest.fixture
def corp(settings: Any, idp: RunningProvider) -> Any:
    """Gatehouse configured with one provider ("corp"); call it again to change its entry."""

    def apply(**overrides: Any) -> None:
        configure(settings, [idp.provider_entry("corp", **overrides)])

    apply()
    return apply


def start(client: Client, provider_id: str = "corp", next_url: str = "") -> str:
    """Press the provider's button on the sign-in page: Gatehouse redirects to the provider."""
    url = f"/accounts/oidc/{provider_id}/login/"
    if next_url:
        url += "?" + urlencode({"next": next_url})
    response = client.post(url)
    assert response.status_code == 302, response.content
    return str(response["Location"])


def sso(client: Client, idp: RunningProvider, login: str, provider_id: str = "corp") -> Any:
    """A whole sign-in through the provider as ``login``; returns Gatehouse's callback answer."""
    authorize = start(client, provider_id)
    account = idp.accounts[login]
    back = sign_in_at_provider(
        authorize, idp.issuer, login=account["login"], password=account["password"]
    )
    return client.get(back.path_and_query)


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("sequence"))


def signed_in_as(client: Client) -> Any:
    return client.session.get("_auth_user_id")


# --- Matching people ----------------------------------------------------------------------


def test_the_login_page_has_a_button_per_provider(
    client: Client, settings: Any, idp: RunningProvider
) -> None:
    configure(
        settings,
        [idp.provider_entry("corp"), idp.provider_entry("partners", name="Partner Login")],
    )
    page = client.get("/accounts/login/").content.decode()
    assert "Sign in with Corp SSO" in page
    assert "Sign in with Partner Login" in page
    assert 'action="/accounts/oidc/corp/login/"' in page
    assert 'action="/accounts/oidc/partners/login/"' in page


def test_no_provider_buttons_without_providers(client: Client, settings: Any) -> None:
    configure(settings, [])
    page = client.get("/accounts/login/").content.decode()
    assert "Sign in with" not in page
    assert "/accounts/oidc/" not in page


def test_the_provider_login_page_on_get_only_asks_to_continue(client: Client, corp: Any) -> None:
    response = client.get("/accounts/oidc/corp/login/")
    assert response.status_code == 200
    assert b"Continue to Corp SSO" in response.content


def test_known_person_is_matched_by_verified_email_and_still_needs_our_code(
    client: Client, corp: Any, idp: RunningProvider
) -> None:
    person = UserFactory(email="known@example.com", display_name="Kim Known")
    device = enrol_totp(person)

    response = sso(client, idp, "known")

    assert response.status_code == 302
    assert signed_in_as(client) == str(person.pk)
    link = SocialAccount.objects.get(provider="corp")
    assert (link.user_id, link.uid) == (person.pk, "sub-known")
    (event,) = events("auth.sso.login")
    assert event.actor_id == person.pk
    assert event.data["provider"] == "corp"
    assert event.data["provider_mfa"] is False
    assert not events("auth.login")
    # Our second factor is still required: every page leads to the code page.
    home = client.get("/")
    assert home.status_code == 302
    assert home["Location"].startswith("/mfa/verify/")
    verified = client.post("/mfa/verify/?next=/", {"code": current_code(device)})
    assert verified.status_code == 302
    assert client.get("/").status_code == 200
    security = client.get("/account/security/").content.decode()
    assert "Through Corp SSO (single sign-on)" in security
    assert "Gatehouse TOTP code" in security


def test_matching_ignores_the_case_of_the_address(
    client: Client, corp: Any, idp: RunningProvider
) -> None:
    person = UserFactory(email="known@example.com")
    sso(client, idp, "shouting")
    assert signed_in_as(client) == str(person.pk)


def test_a_linked_identity_signs_in_again_by_its_sub(
    client: Client, corp: Any, idp: RunningProvider
) -> None:
    person = UserFactory(email="known@example.com")
    sso(client, idp, "known")
    client.post("/accounts/logout/")
    # The person's address changes in Gatehouse; the link (issuer + sub) still finds them.
    User.objects.filter(pk=person.pk).update(email="kim.known@example.com")
    sso(client, idp, "known")
    assert signed_in_as(client) == str(person.pk)
    assert len(events("auth.sso.login")) == 2


def test_an_address_linked_to_another_identity_is_refused(
    client: Client, corp: Any, idp: RunningProvider
) -> None:
    person = UserFactory(email="known@example.com")
    SocialAccount.objects.create(user=person, provider="corp", uid="sub-previous-holder")

    response = sso(client, idp, "known")

    assert response.status_code == 403
    assert b"linked to a different Corp SSO identity" in response.content
    assert signed_in_as(client) is None
    (event,) = events("auth.sso.refused")
    assert event.data["reason"] == "linked_elsewhere"


def test_unverified_email_is_refused(client: Client, corp: Any, idp: RunningProvider) -> None:
    UserFactory(email="known@example.com")

    response = sso(client, idp, "unverified")

    assert response.status_code == 403
    page = response.content.decode()
    assert "Your email address is not verified" in page
    assert "known@example.com" in page
    assert signed_in_as(client) is None
    assert not SocialAccount.objects.exists()
    (event,) = events("auth.sso.refused")
    assert event.data == {
        "provider": "corp",
        "reason": "email_unverified",
        "email": "known@example.com",
        "sub": "sub-unverified",
        "email_verified": False,
    }


def test_unknown_person_is_refused_without_jit(
    client: Client, corp: Any, idp: RunningProvider
) -> None:
    response = sso(client, idp, "stranger")

    assert response.status_code == 403
    assert b"No Gatehouse account for stranger@example.com" in response.content
    assert b"Back to sign in" in response.content
    assert not User.objects.filter(email="stranger@example.com").exists()
    assert signed_in_as(client) is None
    (event,) = events("auth.sso.refused")
    assert event.data["reason"] == "unknown_person"
    assert event.actor_id is None


def test_jit_creates_a_person_with_no_access(
    client: Client, corp: Any, idp: RunningProvider
) -> None:
    corp(jit=True)

    response = sso(client, idp, "stranger")

    assert response.status_code == 302
    person = User.objects.get(email="stranger@example.com")
    assert signed_in_as(client) == str(person.pk)
    assert person.display_name == "Sam Stranger"
    assert person.kind == User.Kind.HUMAN
    assert not person.has_usable_password()
    assert person.team is None and person.manager is None
    assert not person.groups.exists() and not person.is_staff
    assert not Grant.objects.filter(beneficiary=person).exists()
    (created,) = events("user.created")
    assert created.data["source"] == "sso:corp"
    joined = events("person.joined")
    assert [e.target_id for e in joined] == [str(person.pk)]
    (login,) = events("auth.sso.login")
    assert login.data["created"] is True
    # A new person has no second factor yet: enrolment comes first.
    assert client.get("/")["Location"].startswith("/mfa/enrol/")


def test_jit_only_for_listed_domains(client: Client, corp: Any, idp: RunningProvider) -> None:
    corp(jit=True, jit_email_domains=["corp.example.com"])

    response = sso(client, idp, "stranger")

    assert response.status_code == 403
    assert not User.objects.filter(email="stranger@example.com").exists()
    assert events("auth.sso.refused")[0].data["reason"] == "unknown_person"


@pytest.mark.parametrize("kind", [User.Kind.SERVICE, User.Kind.SYSTEM])
def test_service_accounts_and_the_system_actor_are_refused(
    client: Client, corp: Any, idp: RunningProvider, kind: str
) -> None:
    account = UserFactory(email="known@example.com", kind=kind)
    corp(jit=True)  # even where unknown people would be created

    response = sso(client, idp, "known")

    assert response.status_code == 403
    assert b"not a person&#x27;s account" in response.content
    assert signed_in_as(client) is None
    assert not SocialAccount.objects.exists()
    (event,) = events("auth.sso.refused")
    assert (event.data["reason"], event.target_id) == ("not_a_person", str(account.pk))


def test_deactivated_person_is_refused(client: Client, corp: Any, idp: RunningProvider) -> None:
    UserFactory(email="known@example.com", is_active=False)

    response = sso(client, idp, "known")

    assert response.status_code == 403
    assert b"Your Gatehouse account is deactivated" in response.content
    assert signed_in_as(client) is None
    assert events("auth.sso.refused")[0].data["reason"] == "deactivated"


def test_a_linked_person_deactivated_later_is_refused(
    client: Client, corp: Any, idp: RunningProvider
) -> None:
    person = UserFactory(email="known@example.com")
    sso(client, idp, "known")
    client.post("/accounts/logout/")
    User.objects.filter(pk=person.pk).update(
        is_active=False, employment_status=User.EmploymentStatus.LEFT
    )

    response = sso(client, idp, "known")

    assert response.status_code == 403
    assert signed_in_as(client) is None
    assert events("auth.sso.refused")[0].data["reason"] == "deactivated"


# --- MFA trust ------------------------------------------------------------------------------


def test_trusted_provider_asserting_mfa_verifies_the_session(
    client: Client, corp: Any, idp: RunningProvider
) -> None:
    corp(trust_mfa=True)
    person = UserFactory(email="mfa@example.com")
    enrol_totp(person)

    sso(client, idp, "mfa")

    assert client.get("/").status_code == 200
    (event,) = events("auth.sso.login")
    assert (event.data["provider_mfa"], event.data["amr"]) == (True, ["pwd", "mfa"])
    security = client.get("/account/security/").content.decode()
    assert "Asserted by Corp SSO (amr=mfa)" in security
    assert not events("auth.mfa.verified")


def test_untrusted_provider_asserting_mfa_still_needs_our_code(
    client: Client, corp: Any, idp: RunningProvider
) -> None:
    person = UserFactory(email="mfa@example.com")
    enrol_totp(person)

    sso(client, idp, "mfa")

    assert client.get("/")["Location"].startswith("/mfa/verify/")
    assert events("auth.sso.login")[0].data["provider_mfa"] is False


def test_trusted_provider_without_mfa_in_amr_still_needs_our_code(
    client: Client, corp: Any, idp: RunningProvider
) -> None:
    corp(trust_mfa=True)
    person = UserFactory(email="known@example.com")
    enrol_totp(person)

    sso(client, idp, "known")

    assert client.get("/")["Location"].startswith("/mfa/verify/")


def test_withdrawing_trust_ends_it_for_live_sessions(
    client: Client, corp: Any, idp: RunningProvider
) -> None:
    corp(trust_mfa=True)
    person = UserFactory(email="mfa@example.com")
    enrol_totp(person)
    sso(client, idp, "mfa")
    assert client.get("/").status_code == 200

    corp(trust_mfa=False)

    assert client.get("/")["Location"].startswith("/mfa/verify/")


def test_step_up_after_provider_mfa_asks_for_our_code(
    client: Client, corp: Any, idp: RunningProvider
) -> None:
    corp(trust_mfa=True)
    person = UserFactory(email="mfa@example.com")
    device = enrol_totp(person)
    sso(client, idp, "mfa")

    # Regenerating backup codes is a step-up action: the provider's MFA is not fresh enough.
    response = client.post("/account/security/backup-codes/")
    assert response["Location"].startswith("/mfa/verify/")
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert page.context["step_up"] is True
    client.post(response["Location"], {"code": current_code(device)})
    assert client.post("/account/security/backup-codes/")["Location"] == "/mfa/backup-codes/"


def test_step_up_after_provider_mfa_without_a_device_explains_and_enrols(
    client: Client, corp: Any, idp: RunningProvider
) -> None:
    corp(trust_mfa=True)
    UserFactory(email="mfa@example.com")
    sso(client, idp, "mfa")
    assert client.get("/").status_code == 200

    response = client.post("/account/security/backup-codes/", follow=True)

    assert response.redirect_chain[-1][0].startswith("/mfa/enrol/")
    page = response.content.decode()
    assert "needs a fresh Gatehouse code" in page
    assert "Set up your authenticator" in page


# --- Callback errors --------------------------------------------------------------------------


def test_a_tampered_state_is_refused_with_a_clear_page(
    client: Client, corp: Any, idp: RunningProvider
) -> None:
    UserFactory(email="known@example.com")
    authorize = start(client)
    back = sign_in_at_provider(authorize, idp.issuer, login="known", password="known-pass")
    parts = urlsplit(back.callback_url)
    query = parse_qs(parts.query)
    query["state"] = [query["state"][0][::-1]]

    response = client.get(f"{parts.path}?{urlencode(query, doseq=True)}")

    assert response.status_code == 401
    page = response.content.decode()
    assert "Sign-in did not complete" in page
    assert "could not match this answer" in page
    assert signed_in_as(client) is None
    (event,) = events("auth.sso.failed")
    assert event.data["provider"] == "corp"
    assert event.data["state_matched"] is False


def test_a_replayed_callback_is_refused(client: Client, corp: Any, idp: RunningProvider) -> None:
    UserFactory(email="known@example.com")
    authorize = start(client)
    back = sign_in_at_provider(authorize, idp.issuer, login="known", password="known-pass")
    assert client.get(back.path_and_query).status_code == 302
    client.post("/accounts/logout/")

    response = client.get(back.path_and_query)

    assert response.status_code == 401
    assert signed_in_as(client) is None
    assert len(events("auth.sso.failed")) == 1


@pytest.mark.parametrize(
    "query",
    ["", "?code=x", "?state=nope&code=x", "?error=access_denied", "?error=server_error&state=x"],
)
def test_junk_on_the_callback_is_a_clear_page(client: Client, corp: Any, query: str) -> None:
    response = client.get(f"/accounts/oidc/corp/login/callback/{query}", follow=True)
    assert response.status_code in {200, 401}
    assert b"Back to sign in" in response.content
    assert signed_in_as(client) is None


def test_a_provider_error_after_a_real_start_is_a_clear_page(client: Client, corp: Any) -> None:
    authorize = start(client)
    state = parse_qs(urlsplit(authorize).query)["state"][0]

    response = client.get(
        f"/accounts/oidc/corp/login/callback/?error=access_denied&state={state}", follow=True
    )

    assert b"Sign-in cancelled" in response.content


def test_an_unknown_provider_id_is_not_found(client: Client, corp: Any) -> None:
    assert client.post("/accounts/oidc/nobody/login/").status_code == 404
    assert client.get("/accounts/oidc/nobody/login/callback/?code=x&state=y").status_code == 404


def test_signup_and_connections_pages_are_closed(verified_client: Any) -> None:
    person = UserFactory()
    signed_in = verified_client(person)
    assert signed_in.get("/accounts/social/signup/").status_code == 404
    assert signed_in.get("/accounts/social/connections/").status_code == 404


def test_password_sign_in_is_still_auth_login(client: Client, corp: Any) -> None:
    person = UserFactory(email="known@example.com")
    response = client.post("/accounts/login/", {"login": person.email, "password": PASSWORD})
    assert response.status_code == 302
    assert [e.actor_id for e in events("auth.login")] == [person.pk]
    assert not events("auth.sso.login")


def test_the_secret_is_not_in_the_pages(client: Client, corp: Any, idp: RunningProvider) -> None:
    pages = [
        client.get("/accounts/login/"),
        client.get("/accounts/oidc/corp/login/"),
        sso(client, idp, "stranger"),
    ]
    for page in pages:
        assert idp.client_secret.encode() not in page.content


def test_the_page_asked_for_comes_after_sign_in_and_code(
    client: Client, corp: Any, idp: RunningProvider
) -> None:
    person = UserFactory(email="known@example.com")
    enrol_totp(person)
    page = client.get("/accounts/login/?next=/catalog/").content.decode()
    assert 'action="/accounts/oidc/corp/login/?next=%2Fcatalog%2F"' in page

    authorize = start(client, next_url="/catalog/")
    back = sign_in_at_provider(authorize, idp.issuer, login="known", password="known-pass")
    response = client.get(back.path_and_query)

    assert response["Location"] == "/catalog/"
    assert client.get("/catalog/")["Location"] == "/mfa/verify/?next=%2Fcatalog%2F"


def test_the_sign_in_page_may_post_to_the_providers_only(
    client: Client, corp: Any, idp: RunningProvider
) -> None:
    policy = client.get("/accounts/login/")["Content-Security-Policy"]
    (form_action,) = [d for d in policy.split(";") if d.strip().startswith("form-action")]
    assert form_action.split()[1:] == ["'self'", idp.issuer]
