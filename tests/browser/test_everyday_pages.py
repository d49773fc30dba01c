"""Every page in the navigation, for each demo persona, on a laptop (1280x900) and a phone
(390x844): no sideways scrolling, a one-row header on the laptop, never a debug page or a blank
error, and the navigation that persona should see. A screenshot of each page is kept."""

from __future__ import annotations

from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from playwright.sync_api import Browser, Page, expect

from portal.demo import DEMO_PASSWORD
from portal.models import TOTPDevice, User
from tests.browser.conftest import sign_in_with_password
from tests.conftest import current_code

VIEWPORTS = {"laptop": (1280, 900), "phone": (390, 844)}
NAV = {
    "developer": ["Home", "Catalog", "My requests", "My access", "Break-glass", "Docs"],
    "manager": ["Home", "Catalog", "My requests", "My access", "Approvals", "Reviews", "Docs"],
    "owner": [
        "Home",
        "Catalog",
        "My requests",
        "My access",
        "Approvals",
        "Reviews",
        "Pipelines",  # owns the demo's payments-deployer
        "Docs",
    ],
    "security": [
        "Home",
        "Catalog",
        "My requests",
        "My access",
        "Approvals",
        "Dashboard",
        "Campaigns",
        "Provisioning",
        "Directory sync",
        "Pipelines",
        "Audit",
        "Reports",
        "Docs",
        "Admin",
    ],
    "auditor": [
        "Home",
        "Catalog",
        "Dashboard",
        "Campaigns",
        "Pipelines",
        "Audit",
        "Reports",
        "Docs",
    ],
}
# Error pages a newcomer meets: someone else's request or a made-up id, a form-only address.
ERRORS = {"/requests/999999/": "Page not found", "/campaigns/launch/": "This address is for"}
DEBUG_MARKERS = ("Using the URLconf", "Traceback (most recent call last)", "DEBUG = True")
# Our header, or the admin's (the admin keeps Django's layout in our colours).
HEADER = "header.site-header, #header"


def _measure(page: Page) -> dict[str, Any]:
    return page.evaluate(
        """(selector) => {
          const header = document.querySelector(selector);
          const inner = header && (header.querySelector('.site-header__inner') || header);
          const tops = inner ? [...inner.children]
            .filter((e) => e.getBoundingClientRect().height > 0)
            .map((e) => e.getBoundingClientRect()) : [];
          // One row: every visible child of the header overlaps the first one vertically.
          const oneRow = tops.every((r) => r.top < tops[0].bottom && r.bottom > tops[0].top);
          return {
            scrollWidth: document.documentElement.scrollWidth,
            // Tables scroll inside their frame; on a page that fits, none should need to.
            clipped: [...document.querySelectorAll('.table-wrap')]
              .filter((e) => e.scrollWidth > e.clientWidth + 1).length,
            width: window.innerWidth,
            headerHeight: header ? header.getBoundingClientRect().height : 0,
            oneRow: oneRow,
            text: document.body ? document.body.innerText : '',
            nav: [...document.querySelectorAll('.main-nav .main-nav__label')]
              .map((e) => e.dataset.label),
          };
        }""",
        HEADER,
    )


def _slug(href: str) -> str:
    return href.strip("/").replace("/", "-") or "home"


@pytest.fixture
def demo(live_server: Any, settings: Any, tmp_path: Path) -> None:
    settings.VAR_DIR = tmp_path  # the demo's backup-codes file goes here, not into var/
    call_command("seed_demo", "--no-personas", stdout=StringIO())


@pytest.mark.parametrize("persona", list(NAV))
def test_every_page_in_the_navigation_fits_and_is_styled(
    persona: str, demo: None, browser: Browser, live_server: Any, screenshot_dir: Path
) -> None:
    user = User.objects.get(email=f"{persona}@example.com")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sign_in_with_password(page, live_server.url, user.email, DEMO_PASSWORD)
    page.get_by_label("Code", exact=True).fill(current_code(TOTPDevice.objects.get(user=user)))
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Hello, {user.get_short_name()}")
    hrefs = page.eval_on_selector_all(".main-nav a", "links => links.map((a) => a.pathname)")
    problems: list[str] = []
    for name, (width, height) in VIEWPORTS.items():
        page.set_viewport_size({"width": width, "height": height})
        for href in [*hrefs, *ERRORS]:
            response = page.goto(f"{live_server.url}{href}")
            assert response is not None
            m = _measure(page)
            where = f"{persona} {name} {href}"
            page.screenshot(
                path=screenshot_dir / f"everyday-{persona}-{name}-{_slug(href)}.png",
                full_page=True,
            )
            if href in ERRORS:
                if ERRORS[href] not in m["text"]:
                    problems.append(f"{where}: not the styled error page ({response.status})")
            elif response.status != 200:
                problems.append(f"{where}: status {response.status}")
            if not m["text"].strip():
                problems.append(f"{where}: empty page ({response.status})")
            if any(marker in m["text"] for marker in DEBUG_MARKERS):
                problems.append(f"{where}: Django's debug page")
            if m["scrollWidth"] > m["width"]:
                problems.append(f"{where}: scrolls sideways ({m['scrollWidth']} > {m['width']})")
            if m["clipped"]:
                problems.append(f"{where}: {m['clipped']} table(s) wider than their frame")
            if href.startswith("/admin/"):
                continue  # the admin has its own header and navigation
            if m["nav"] != NAV[persona]:
                problems.append(f"{where}: navigation {m['nav']}")
            if name == "laptop" and not (m["oneRow"] and m["headerHeight"] < 64):
                problems.append(f"{where}: header not one row ({m['headerHeight']:.0f} px)")
    context.close()
    assert problems == []
