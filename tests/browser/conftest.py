"""Browser journeys: headless Debian Chromium driven by pytest-playwright against live_server.

Playwright's own browser download does not work on our machines, so the tests use the system
Chromium at ``/usr/bin/chromium``. Without it the journeys are skipped, unless
``GATEHOUSE_REQUIRE_BROWSER=1`` (set by CI), in which case every journey fails loudly.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, Playwright, expect

from portal.models import TOTPDevice, User
from tests.conftest import current_code, enrol_totp
from tests.factories import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
BROWSER_DIR = Path(__file__).resolve().parent
SCREENSHOTS = BROWSER_DIR.parent.parent / "test-artifacts" / "screenshots"
TOTP_STEP = 30


def _browser_required() -> bool:
    return os.environ.get("GATEHOUSE_REQUIRE_BROWSER", "") == "1"


def _missing_browser_reason() -> str:
    return (
        f"Chromium not found at {CHROMIUM}: install it with `apt-get install -y chromium` "
        "(Playwright's own browser download does not work here)"
    )


def pytest_itemcollected(item: pytest.Item) -> None:
    """Mark each journey ``browser`` as it is collected, before ``-m`` selects by marks (CI's
    SQLite run leaves them out), and skip it when Chromium is missing and not required."""
    if BROWSER_DIR not in item.path.parents:
        return
    item.add_marker(pytest.mark.browser)
    if not CHROMIUM.exists() and not _browser_required():
        item.add_marker(pytest.mark.skip(reason=_missing_browser_reason()))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the journeys last (after pytest-django's own ordering).

    Running them last matters: from the moment Playwright starts until the end of the session,
    the test thread has a running event loop and DJANGO_ALLOW_ASYNC_UNSAFE is set (see the
    ``playwright`` fixture below), which no other test should run under.
    """
    chosen = {item for item in items if BROWSER_DIR in item.path.parents}
    items[:] = [item for item in items if item not in chosen] + [
        item for item in items if item in chosen
    ]


@pytest.fixture(scope="session")
def playwright(playwright: Playwright) -> Iterator[Playwright]:
    """pytest-playwright's session, with Django's async-safety check off while it runs.

    Playwright's sync API keeps an event loop running in the test thread; Django would then refuse
    every ORM call of the tests and fixtures (SynchronousOnlyOperation). The variable is set only
    while Playwright runs, not at import: set for the whole session it would also reach other
    tests' subprocesses (``manage.py check --deploy`` warns about it).
    """
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield playwright
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    if not CHROMIUM.exists():
        if _browser_required():
            pytest.fail(
                f"GATEHOUSE_REQUIRE_BROWSER=1 but {_missing_browser_reason()}", pytrace=False
            )
        pytest.skip(_missing_browser_reason())
    return {
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "args": CHROMIUM_ARGS,
        "headless": True,
    }


@pytest.fixture(scope="session")
def base_url(live_server: Any) -> str:
    """Pages resolve relative URLs against the live server. (This also replaces
    pytest-playwright's fallback fixture, an instance method that pytest 9.2 warns about.)"""
    return str(live_server.url)


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


# --- Helpers ----------------------------------------------------------------------------------


def totp_step() -> int:
    """The current RFC 6238 time step (30-second window since the epoch)."""
    return int(time.time() // TOTP_STEP)


def wait_for_step_after(step: int) -> None:
    """Sleep until the TOTP time step is later than ``step`` (the server refuses a reused step)."""
    while totp_step() <= step:
        time.sleep(max(0.05, (step + 1) * TOTP_STEP - time.time() + 0.05))


def sign_in_with_password(page: Page, base_url: str, email: str, password: str = PASSWORD) -> None:
    """Open the sign-in page and submit email + password (the OTP step comes next)."""
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()


def login_with_totp(page: Page, live_server: Any, user: User) -> TOTPDevice:
    """Give ``user`` a TOTP device and sign in through the real password + code pages.

    Returns the device; its ``last_t`` holds the step of the code used, so a later sign-in in the
    same test must wait for the next step (see ``wait_for_step_after``).
    """
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first() or enrol_totp(user)
    sign_in_with_password(page, live_server.url, user.email)
    expect(page).to_have_url(f"{live_server.url}/mfa/verify/?next=%2F")
    page.get_by_label("Code", exact=True).fill(current_code(device))
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Hello, {user.get_short_name()}")
    device.refresh_from_db()
    return device
