"""A security admin launches an access review; the manager certifies two items in bulk and
revokes one with a reason; the revoked access leaves the holder's My access; the evidence report
downloads."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, expect

from accessreq.campaign_states import CampaignState, ReviewDecision
from accessreq.models import Campaign, CampaignTemplate, GrantState, ReviewItem, RiskTier
from accessreq.services.common import MfaContext
from accessreq.services.requests import request_approve, request_submit
from portal.roles import SECURITY_ADMIN
from tests.browser.conftest import login_with_totp
from tests.factories import (
    EntitlementFactory,
    EnvironmentFactory,
    SystemFactory,
    UserFactory,
)

REASON = "Build and test the payout batching in dev"


def test_launch_certify_revoke_and_download_evidence(
    page: Page, browser: Browser, live_server: Any, screenshot_dir: Path
) -> None:
    admin = UserFactory(
        display_name="Sam Security", email="sam@example.com", is_staff=True, groups=[SECURITY_ADMIN]
    )
    manager = UserFactory(display_name="Mina Manager", email="mina@example.com")
    dev = UserFactory(display_name="Dana Developer", email="dana@example.com", manager=manager)
    owner = UserFactory(display_name="Omar Owner", email="omar@example.com")
    env = EnvironmentFactory(name="dev", slug="dev", risk_tier=RiskTier.LOW)
    system = SystemFactory(name="payments", slug="payments")
    grants = {}
    for name in ("Log reader", "Deployer", "Database reader"):
        entitlement = EntitlementFactory(system=system, environment=env, name=name)
        entitlement.owners.add(owner)
        access_request = request_submit(
            actor=dev, entitlement=entitlement, justification=REASON, duration=timedelta(hours=8)
        )
        request_approve(actor=owner, request_id=access_request.pk, mfa=MfaContext("totp", 1))
        access_request.refresh_from_db()
        grants[name] = access_request.grant
    template = CampaignTemplate.objects.create(
        name="Quarterly dev review", fallback_reviewer=admin, owner=admin
    )
    base = live_server.url

    # The security admin launches the campaign by hand.
    login_with_totp(page, live_server, admin)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Campaigns").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Access review campaigns")
    page.get_by_role("button", name=re.compile(r"^Launch now")).click()
    campaign = Campaign.objects.get(template=template)
    assert campaign.state == CampaignState.OPEN
    assert ReviewItem.objects.filter(campaign=campaign, reviewer=manager).count() == 3

    # The manager certifies two items in bulk and revokes one with a reason.
    reviewer = browser.new_page()
    login_with_totp(reviewer, live_server, manager)
    reviewer.get_by_role("navigation", name="Main").get_by_role(
        "link", name=re.compile("Reviews")
    ).click()
    expect(reviewer.get_by_role("heading", level=1)).to_have_text("My reviews")
    rows = reviewer.locator("tbody tr")
    expect(rows).to_have_count(3)
    for name in ("Log reader", "Deployer"):
        reviewer.get_by_role("checkbox", name=re.compile(name)).check()
    reviewer.get_by_role("button", name="Certify selected").first.click()
    expect(reviewer.get_by_role("status")).to_contain_text("2")
    revoke_row = reviewer.locator("tbody tr", has_text="Database reader")
    revoke_row.locator("summary", has_text="Revoke").click()
    revoke_row.get_by_label(re.compile("Why revoke")).fill("Dana moved to the mobile team")
    revoke_row.get_by_role("button", name="Revoke access").click()
    expect(reviewer.get_by_role("status")).to_be_visible()
    reviewer.screenshot(path=screenshot_dir / "campaign-reviews.png", full_page=True)

    decisions = dict(
        ReviewItem.objects.filter(campaign=campaign).values_list(
            "grant__entitlement__name", "decision"
        )
    )
    assert decisions == {
        "Log reader": ReviewDecision.CERTIFIED,
        "Deployer": ReviewDecision.CERTIFIED,
        "Database reader": ReviewDecision.REVOKED,
    }
    revoked = grants["Database reader"]
    assert revoked is not None
    revoked.refresh_from_db()
    assert revoked.state == GrantState.REVOKED

    # The holder no longer sees the revoked access as active.
    holder = browser.new_page()
    login_with_totp(holder, live_server, dev)
    holder.goto(f"{base}/access/")
    active = holder.get_by_role("region", name=re.compile("Active now"))
    if active.count() == 0:
        active = holder.locator("section").filter(has_text="Active now").first
    expect(active).to_contain_text("Log reader")
    expect(active).not_to_contain_text("Database reader")
    holder.screenshot(path=screenshot_dir / "campaign-holder-access.png", full_page=True)

    # The security admin downloads the evidence report.
    page.goto(f"{base}/campaigns/{campaign.pk}/")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="PDF", exact=True).first.click()
    download = download_info.value
    path = screenshot_dir / "campaign-evidence.pdf"
    download.save_as(path)
    assert path.read_bytes().startswith(b"%PDF")
    page.get_by_role("link", name="Read the report").click()
    expect(page.get_by_text("Dana moved to the mobile team").first).to_be_visible()
    page.screenshot(path=screenshot_dir / "campaign-evidence.png", full_page=True)
