"""A new person's first sign-in: password, authenticator enrolment, backup codes, then a second
sign-in that needs a code. Password alone never reaches a protected page."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

from django_otp.oath import hotp
from playwright.sync_api import Page, expect

from portal.models import TOTPDevice
from tests.browser.conftest import sign_in_with_password, totp_step, wait_for_step_after
from tests.factories import PASSWORD, UserFactory


def _code_from_secret(secret: str, step: int) -> str:
    """What an authenticator app shows during time ``step``, from the key shown for manual entry.

    RFC 6238 TOTP is HOTP over the step number; pinning the step avoids racing the clock.
    """
    compact = re.sub(r"\s+", "", secret).upper()
    key = base64.b32decode(compact + "=" * (-len(compact) % 8))
    return f"{hotp(key, step, digits=6):06d}"


def test_first_sign_in_enrols_then_second_sign_in_needs_a_code(
    page: Page, live_server: Any, screenshot_dir: Path
) -> None:
    user = UserFactory(display_name="Nora Newcomer", email="nora@example.com")
    base = live_server.url

    # Anonymous: the portal sends the person to the sign-in page.
    page.goto(f"{base}/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to Gatehouse")

    # Password first; with no second factor yet, the enrolment page follows.
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/mfa/enrol/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Set up your authenticator")

    # Do what an authenticator app does with the key shown for manual entry.
    secret = page.locator("#totp-secret").inner_text()
    assert re.fullmatch(r"[A-Z2-7]{4}( [A-Z2-7]{1,4})+", secret), secret
    enrol_step = totp_step()
    page.get_by_label("6-digit code").fill(_code_from_secret(secret, enrol_step))
    page.get_by_role("button", name="Confirm and continue").click()

    # Ten backup codes, shown once.
    expect(page.get_by_role("heading", level=1)).to_have_text("Save your backup codes")
    expect(page.locator("#backup-codes li")).to_have_count(10)
    page.get_by_role("link", name="I have saved my codes").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Hello, Nora")

    device = TOTPDevice.objects.get(user=user, confirmed=True)
    assert device.last_t >= enrol_step

    # Sign out (a POST form in the header's account menu) and back in with the password.
    page.locator(".account-menu summary").click()
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    sign_in_with_password(page, base, user.email)
    expect(page).to_have_url(re.compile(r"/mfa/verify/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Two-step verification")

    # The password alone reaches no protected page: a deep link lands on the code page too.
    page.goto(f"{base}/catalog/")
    expect(page).to_have_url(f"{base}/mfa/verify/?next=%2Fcatalog%2F")
    expect(page.get_by_role("heading", level=1)).to_have_text("Two-step verification")

    # The code used at enrolment cannot be replayed: use the app's next code.
    device.refresh_from_db()
    wait_for_step_after(device.last_t)
    page.get_by_label("Code", exact=True).fill(_code_from_secret(secret, totp_step()))
    page.get_by_role("button", name="Verify").click()

    expect(page).to_have_url(f"{base}/catalog/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Access catalog")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Home").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Hello, Nora")
    page.screenshot(path=screenshot_dir / "login-journey.png", full_page=True)
