"""A developer opens the docs, finds the runbook on approving access, and sees the approval
chain drawn from the live policy; a security admin changes the policy and the drawing follows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from playwright.sync_api import Page, expect

from accessreq.models import ApprovalPolicy
from docs.services import runbook_seed
from tests.browser.conftest import login_with_totp
from tests.factories import UserFactory

RUNBOOKS = Path(settings.BASE_DIR) / "docs" / "runbooks"


def test_runbook_with_a_live_diagram(page: Page, live_server: Any, screenshot_dir: Path) -> None:
    runbook_seed(directory=RUNBOOKS)
    reader = UserFactory(display_name="Dana Developer", email="dana@example.com")
    login_with_totp(page, live_server, reader)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Docs").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Docs")
    page.get_by_role("link", name="Approving access", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Approving access")
    expect(page.get_by_role("navigation", name="On this page")).to_be_visible()
    expect(page.get_by_text("Security liaison", exact=False).first).to_be_visible()

    figure = page.locator("figure.diagram").first
    figure.scroll_into_view_if_needed()
    expect(figure.locator("svg")).to_be_visible()
    expect(figure.locator("svg")).to_contain_text("System owner")
    figure.screenshot(path=screenshot_dir / "docs-runbook-diagram.png")

    # A policy change shows on the next page load: the high tier gains a security-admin stage.
    high = ApprovalPolicy.objects.get(tier="high")
    high.stages.create(position=3, approver_rule="security_admin", quorum=2, step_up=True)
    page.reload()
    figure = page.locator("figure.diagram").first
    expect(figure.locator("svg")).to_contain_text("Security admin")
    page.screenshot(path=screenshot_dir / "docs-runbook.png", full_page=True)
