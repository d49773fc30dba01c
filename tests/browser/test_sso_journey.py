"""Single sign-on in a browser, through a real OpenID Connect provider on loopback
(tests/oidc_provider): a known person still gives our code, a trusted provider's MFA is enough,
an unknown person is refused, and a tampered ``state`` is refused with a clear page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from playwright.sync_api import Page, Route, expect

from audit.models import AuditEvent
from tests.conftest import current_code, enrol_totp
from tests.factories import UserFactory
from tests.oidc_provider.harness import RunningProvider, configure, running_provider


@pytest.fixture(scope="module")
def idp() -> Iterator[RunningProvider]:
    with running_provider() as provider:
        yield provider


@pytest.fixture
def providers(settings: Any, idp: RunningProvider) -> None:
    """Two providers on the same test IdP: one trusted for MFA, one not."""
    configure(
        settings,
        [
            idp.provider_entry("corp", name="Corp SSO"),
            idp.provider_entry("secure", name="Secure SSO", trust_mfa=True),
        ],
    )


def sign_in_at_idp(page: Page, login: str, password: str) -> None:
    expect(page.get_by_role("heading", level=1)).to_have_text("Test IdP sign-in")
    page.get_by_label("Username").fill(login)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in to Test IdP").click()


def test_known_person_signs_in_through_the_provider_and_still_gives_our_code(
    page: Page, live_server: Any, providers: None, screenshot_dir: Path
) -> None:
    person = UserFactory(email="known@example.com", display_name="Kim Known")
    device = enrol_totp(person)
    base = live_server.url

    page.goto(f"{base}/accounts/login/")
    corp = page.get_by_role("button", name="Sign in with Corp SSO")
    expect(corp).to_be_visible()
    expect(page.get_by_role("button", name="Sign in with Secure SSO")).to_be_visible()
    page.screenshot(path=screenshot_dir / "sso-login-page.png", full_page=True)

    # Keyboard only: the provider button is the first control after the skip link and header.
    corp.focus()
    page.keyboard.press("Enter")
    sign_in_at_idp(page, "known", "known-pass")

    # Back at Gatehouse: the provider's password alone is not enough, our code comes next.
    expect(page).to_have_url(re.compile(r"/mfa/verify/"))
    page.get_by_label("Code", exact=True).fill(current_code(device))
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Hello, Kim")

    page.goto(f"{base}/account/security/")
    expect(page.locator("#session-second-factor")).to_contain_text("Gatehouse TOTP code")
    assert AuditEvent.objects.filter(action="auth.sso.login", actor_id=person.pk).count() == 1


def test_trusted_provider_asserting_mfa_needs_no_code_at_sign_in(
    page: Page, live_server: Any, providers: None, screenshot_dir: Path
) -> None:
    person = UserFactory(email="mfa@example.com", display_name="Mia Multifactor")
    enrol_totp(person)
    base = live_server.url

    page.goto(f"{base}/accounts/login/")
    page.get_by_role("button", name="Sign in with Secure SSO").click()
    sign_in_at_idp(page, "mfa", "mfa-pass")

    expect(page.get_by_role("heading", level=1)).to_have_text("Hello, Mia")
    page.goto(f"{base}/account/security/")
    expect(page.locator("#session-second-factor")).to_have_text("Asserted by Secure SSO (amr=mfa)")
    page.screenshot(path=screenshot_dir / "sso-security-page.png", full_page=True)


def test_unknown_person_is_refused_with_a_clear_page(
    page: Page, live_server: Any, providers: None, screenshot_dir: Path
) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_role("button", name="Sign in with Corp SSO").click()
    sign_in_at_idp(page, "stranger", "stranger-pass")

    expect(page.get_by_role("heading", level=1)).to_have_text(
        "No Gatehouse account for stranger@example.com"
    )
    expect(
        page.get_by_text("Gatehouse accounts are created by your administrators")
    ).to_be_visible()
    page.screenshot(path=screenshot_dir / "sso-refused.png", full_page=True)
    page.get_by_role("link", name="Back to sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to Gatehouse")
    assert AuditEvent.objects.filter(action="auth.sso.refused").count() == 1


def test_a_tampered_state_on_the_callback_is_refused(
    page: Page, live_server: Any, providers: None, screenshot_dir: Path
) -> None:
    person = UserFactory(email="known@example.com")
    enrol_totp(person)
    base = live_server.url
    tampered: list[str] = []

    def tamper_state(route: Route) -> None:
        # Playwright routes only the first request of a redirect chain, so the state is changed
        # where it leaves Gatehouse (the button's redirect to the provider); the provider hands
        # it back unchanged, and Gatehouse's callback receives a state it never issued.
        response = route.fetch(max_redirects=0)
        parts = urlsplit(response.headers["location"])
        query = parse_qs(parts.query)
        query["state"] = ["tampered" + query["state"][0][8:]]
        location = parts._replace(query=urlencode(query, doseq=True)).geturl()
        tampered.append(query["state"][0])
        route.fulfill(status=302, headers={"Location": location})

    page.route(f"{base}/accounts/oidc/corp/login/", tamper_state)
    page.goto(f"{base}/accounts/login/")
    page.get_by_role("button", name="Sign in with Corp SSO").click()
    sign_in_at_idp(page, "known", "known-pass")

    expect(page).to_have_url(re.compile(r"/accounts/oidc/corp/login/callback/\?.*state=tampered"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign-in did not complete")
    expect(page.get_by_text("could not match this answer")).to_be_visible()
    page.screenshot(path=screenshot_dir / "sso-bad-state.png", full_page=True)
    # Nobody is signed in: the portal still sends the browser to the sign-in page.
    page.goto(f"{base}/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    assert len(tampered) == 1
    assert AuditEvent.objects.filter(action="auth.sso.failed").count() == 1
    assert not AuditEvent.objects.filter(action="auth.sso.login").exists()
