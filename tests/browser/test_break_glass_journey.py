"""An on-call developer takes emergency prod access with break-glass during an incident; the use is
marked everywhere; the reviewers are emailed at once; the system owner reviews it afterwards from
the approvals inbox, and the developer sees the review."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core import mail
from playwright.sync_api import BrowserContext, Page, expect

from accessreq.models import AccessRequest, GrantState, RequestKind, RiskTier
from accessreq.states import RequestState
from audit.models import AuditEvent
from portal.roles import ON_CALL
from tests.browser.conftest import login_with_totp
from tests.factories import EntitlementFactory, EnvironmentFactory, SystemFactory, UserFactory

INCIDENT = "INC-2042"
REASON = "Payments API returns 500s after the 14:00 deploy; rolling back by hand"
REVIEW = "Justified: the rollback fixed INC-2042; checked the deploy log"


def test_on_call_takes_break_glass_and_owner_reviews_it(
    page: Page,
    new_context: Callable[..., BrowserContext],
    live_server: Any,
    screenshot_dir: Path,
) -> None:
    base = live_server.url
    manager = UserFactory(display_name="Mina Manager", email="mina@example.com")
    owner = UserFactory(display_name="Omar Owner", email="omar@example.com")
    developer = UserFactory(
        display_name="Oona Oncall", email="oona@example.com", manager=manager, groups=[ON_CALL]
    )
    system = SystemFactory(name="payments-api", slug="payments-api")
    system.owners.add(owner)
    prod = EnvironmentFactory(name="prod", slug="prod", risk_tier=RiskTier.HIGH)
    entitlement = EntitlementFactory(
        system=system,
        environment=prod,
        name="Payments deployer",
        slug="payments-deployer",
        scopes=["deploy"],
        emergency_capable=True,
        max_duration=timedelta(days=1),
    )
    # Not emergency-capable: never offered on the break-glass page.
    EntitlementFactory(system=system, environment=prod, name="Payments admin", slug="admin")

    # --- The on-call developer takes emergency access -----------------------------------------
    login_with_totp(page, live_server, developer)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Break-glass").click()
    expect(page).to_have_url(f"{base}/break-glass/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Take access now, without approval")
    offered = page.get_by_role("region", name="Emergency-capable access").locator("tbody tr")
    expect(offered).to_have_count(1)
    expect(offered.first).to_contain_text("Payments deployer")
    offered.first.get_by_role("link", name=f"Choose {entitlement}").click()
    expect(page).to_have_url(f"{base}/break-glass/?entitlement={entitlement.pk}")

    access = page.get_by_label("Access you need")
    expect(access).to_have_value(str(entitlement.pk))
    page.get_by_label("Incident reference").fill(INCIDENT)
    page.get_by_label("What is broken and what you will do").fill(REASON)
    page.get_by_label("1 hour").check()
    # Signed in with a code seconds ago, so no second code is asked for.
    expect(page.get_by_text("You verified a code a moment ago")).to_be_visible()
    expect(page.get_by_label("Authenticator code")).to_have_count(0)
    page.screenshot(path=screenshot_dir / "break-glass-1-form.png", full_page=True)
    page.get_by_role("button", name="Take emergency access now").click()

    # --- The use's page is marked BREAK-GLASS -------------------------------------------------
    expect(page).to_have_url(re.compile(rf"^{re.escape(base)}/requests/\d+/$"))
    use = AccessRequest.objects.get(beneficiary=developer)
    assert page.url == f"{base}/requests/{use.pk}/"
    assert use.kind == RequestKind.BREAK_GLASS and use.state == RequestState.ACTIVE
    assert use.grant is not None and use.grant.break_glass
    assert use.grant.expires_at - use.grant.starts_at == timedelta(hours=1)
    expect(page.get_by_role("status")).to_contain_text(
        f"Break-glass access taken: you hold {entitlement}"
    )
    expect(page.get_by_role("heading", level=1)).to_contain_text(
        "Break-glass use of Payments deployer"
    )
    head = page.locator(".page-head")
    expect(head.locator(".state")).to_have_text("Active")
    expect(head.locator(".break-glass-mark")).to_have_text("Break-glass")
    facts = page.get_by_role("region", name="The request")
    expect(facts).to_contain_text(INCIDENT)
    expect(facts).to_contain_text(REASON)
    review_panel = page.get_by_role("region", name="After-the-fact review")
    expect(review_panel).to_contain_text("Not reviewed yet.")
    expect(review_panel).to_contain_text(f"Asked to review: {manager}, {owner}.")
    page.screenshot(path=screenshot_dir / "break-glass-2-taken.png", full_page=True)

    # The reviewers were emailed at once (the live server runs in this process, so the locmem
    # outbox is this test's).
    prefix = settings.ACCOUNT_EMAIL_SUBJECT_PREFIX
    alerts = [m for m in mail.outbox if m.subject.startswith(f"{prefix}BREAK-GLASS:")]
    assert sorted(to for m in alerts for to in m.to) == [manager.email, owner.email]
    assert all(m.subject == f"{prefix}BREAK-GLASS: {developer} took {entitlement}" for m in alerts)
    assert all(f"Incident: {INCIDENT}" in m.body and REASON in m.body for m in alerts)
    assert all(f"/requests/{use.pk}/" in m.body for m in alerts)

    # --- My access marks the grant -------------------------------------------------------------
    page.get_by_role("navigation", name="Main").get_by_role("link", name="My access").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("My access")
    active = page.get_by_role("region", name=re.compile(r"^Active now")).locator("tbody tr")
    expect(active).to_have_count(1)
    expect(active.first).to_have_class(re.compile(r"\brow--break-glass\b"))
    expect(active.first.locator(".break-glass-mark")).to_have_text("Break-glass")
    expect(active.first.get_by_role("link", name="Payments deployer", exact=True)).to_be_visible()
    expect(active.first).to_contain_text(re.compile(r"Ends in (59 minutes|1 hour)"))
    page.screenshot(path=screenshot_dir / "break-glass-3-my-access.png", full_page=True)

    # --- The system owner reviews the use from the approvals inbox -----------------------------
    owner_page = new_context().new_page()
    login_with_totp(owner_page, live_server, owner)
    nav = owner_page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Approvals")).to_contain_text("1")
    nav.get_by_role("link", name="Approvals").click()
    reviews = owner_page.get_by_role("region", name=re.compile(r"Break-glass uses to review"))
    expect(reviews.get_by_role("heading", level=2)).to_have_text("Break-glass uses to review (1)")
    card = reviews.locator(f"#review-{use.pk}")
    expect(card.get_by_role("heading", level=3)).to_have_text(
        f"Break-glass {developer} took {entitlement}"
    )
    expect(card).to_contain_text(INCIDENT)
    expect(card).to_contain_text(REASON)
    expect(card).to_contain_text("Still active")
    expect(owner_page.get_by_text("Nothing is waiting for you.")).to_be_visible()
    card.get_by_label("Review comment").fill(REVIEW)
    expect(card.get_by_label("Revoke this access now")).not_to_be_checked()
    owner_page.screenshot(path=screenshot_dir / "break-glass-4-review.png", full_page=True)
    card.get_by_role("button", name="Record review").click()

    # The form posts to ...#review-<id>; the redirect back to the inbox keeps that fragment.
    expect(owner_page).to_have_url(f"{base}/approvals/#review-{use.pk}")
    expect(owner_page.get_by_role("status")).to_contain_text(
        f"You reviewed {developer}'s break-glass use of {entitlement}."
    )
    expect(owner_page.get_by_role("region", name=re.compile(r"Break-glass uses"))).to_have_count(0)
    expect(nav.get_by_role("link", name="Approvals")).to_have_text("Approvals")

    # --- The developer sees the review; the access stays (it was not revoked) ------------------
    page.goto(f"{base}/requests/{use.pk}/")
    expect(review_panel).to_contain_text(f"Reviewed by {owner}")
    expect(review_panel.locator("blockquote")).to_have_text(REVIEW)
    expect(head.locator(".state")).to_have_text("Active")
    page.screenshot(path=screenshot_dir / "break-glass-5-reviewed.png", full_page=True)

    # --- The record -----------------------------------------------------------------------------
    use.refresh_from_db()
    assert use.reviewed_by_id == owner.pk and use.review_comment == REVIEW
    assert use.grant is not None and use.grant.state == GrantState.ACTIVE
    taken = AuditEvent.objects.get(action="request.break_glass")
    assert taken.actor_id == developer.pk
    assert taken.data["incident"] == INCIDENT and taken.data["reason"] == REASON
    assert taken.data["duration_seconds"] == 3600
    assert taken.data["mfa_method"] == "totp" and taken.data["mfa_age_seconds"] is not None
    reviewed = AuditEvent.objects.get(action="request.break_glass_reviewed")
    assert reviewed.actor_id == owner.pk
    assert reviewed.data["comment"] == REVIEW and reviewed.data["revoke"] is False
    assert not AuditEvent.objects.filter(action="grant.revoked").exists()
    told = [m for m in mail.outbox if m.to == [developer.email]]
    assert [m.subject for m in told] == [f"{prefix}Break-glass reviewed: {entitlement}"]
    assert REVIEW in told[0].body
