"""A verified person browses the catalog, searches by system name, and reads it on a phone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from tests.browser.conftest import login_with_totp
from tests.factories import EntitlementFactory, SystemFactory, UserFactory


def test_catalog_search_and_phone_layout(
    page: Page, live_server: Any, screenshot_dir: Path
) -> None:
    payments = SystemFactory(name="payments-api", slug="payments-api")
    ledger = SystemFactory(name="ledger", slug="ledger")
    EntitlementFactory(system=payments, name="Payments deployer", slug="payments-deployer")
    EntitlementFactory(
        system=payments, name="Payments reader", slug="payments-reader", scopes=["read"]
    )
    EntitlementFactory(system=ledger, name="Ledger operator", slug="ledger-operator")
    user = UserFactory(display_name="Vera Verified", email="vera@example.com")

    login_with_totp(page, live_server, user)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Catalog").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Access catalog")
    rows = page.get_by_role("table").locator("tbody tr")
    expect(rows).to_have_count(3)
    expect(page.get_by_text("3 entitlements")).to_be_visible()

    page.get_by_role("searchbox", name="Search").fill("payments")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(f"{live_server.url}/catalog/?q=payments&tier=")
    expect(rows).to_have_count(2)
    expect(page.get_by_text("2 entitlements")).to_be_visible()
    expect(page.get_by_role("cell", name="Payments deployer", exact=True)).to_be_visible()
    expect(page.get_by_role("cell", name="Payments reader", exact=True)).to_be_visible()
    expect(page.get_by_role("cell", name="Ledger operator", exact=True)).to_have_count(0)
    expect(page.get_by_role("link", name="Clear")).to_be_visible()

    page.set_viewport_size({"width": 390, "height": 844})
    expect(rows).to_have_count(2)
    page.screenshot(path=screenshot_dir / "catalog-phone.png", full_page=True)
