"""An auditor searches the ledger, checks one event's inclusion proof, and exports evidence after a
step-up code; the bundle verifies offline with its own verifier. Others find no audit pages."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from audit.checkpoints import checkpoint_sign
from audit.models import AuditEvent
from audit.services import record
from portal.models import User
from tests.browser.conftest import login_with_totp, wait_for_step_after
from tests.conftest import current_code

# The export's step-up window for this test: shorter than the production minimum (30 s, enforced
# on the environment variable only) so the sign-in verification goes stale within seconds, yet
# long enough that the fresh step-up code is still valid when the download button is pressed.
STEP_UP_WINDOW = 8


def _seed_ledger(requester: User, admin: User) -> AuditEvent:
    """A few events of different families, covered by a signed checkpoint.

    Returns the failed sign-in, the event the auditor opens.
    """
    failed = record(actor=None, action="auth.login.failed", data={"email": requester.email})
    record(actor=requester, action="auth.login", target=requester)
    record(actor=requester, action="auth.mfa.verified", target=requester, data={"method": "totp"})
    record(
        actor=admin,
        action="user.changed",
        target=requester,
        data={"display_name": ["Dev", "Dev Requester"]},
    )
    assert checkpoint_sign(actor=None) is not None
    return failed


def test_auditor_searches_checks_proof_and_exports_verified_evidence(
    page: Page,
    live_server: Any,
    screenshot_dir: Path,
    tmp_path: Path,
    settings: Any,
    auditor: User,
    requester: User,
    security_admin: User,
) -> None:
    settings.MFA_STEP_UP_SECONDS = STEP_UP_WINDOW
    failed = _seed_ledger(requester, security_admin)
    base = live_server.url

    device = login_with_totp(page, live_server, auditor)
    signed_in_by = time.time()  # the session's verification time is at or before this

    # "Audit" in the main navigation opens the search page, newest events first.
    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("link", name="Audit").click()
    expect(page).to_have_url(f"{base}/audit/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Audit log")
    expect(nav.get_by_role("link", name="Audit")).to_have_attribute("aria-current", "page")
    rows = page.get_by_role("table").locator("tbody tr")
    expect(rows).to_have_count(AuditEvent.objects.count())

    # Only the sign-in family: the seeded events and the auditor's own sign-in.
    page.get_by_label("Action", exact=True).select_option("auth.")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"/audit/\?(.*&)?action=auth\.(&|$)"))
    auth_count = AuditEvent.objects.filter(action__startswith="auth.").count()
    assert auth_count == 5  # 3 seeded + the auditor's password and code steps
    expect(rows).to_have_count(auth_count)
    expect(page.get_by_text(f"Showing {auth_count} events that match your search")).to_be_visible()
    actions = rows.locator("code.audit-action")
    expect(actions).to_have_count(auth_count)
    assert all(code.startswith("auth.") for code in actions.all_inner_texts())
    expect(rows.filter(has_text="user.changed")).to_have_count(0)
    expect(rows.filter(has_text="audit.checkpoint.signed")).to_have_count(0)
    expect(rows.filter(has_text=auditor.email)).to_have_count(2)
    page.screenshot(path=screenshot_dir / "auditor-search.png", full_page=True)

    # One event: every field, the details, and a verified inclusion proof.
    page.get_by_role("link", name=f"Event {failed.sequence}", exact=True).click()
    expect(page).to_have_url(f"{base}/audit/events/{failed.sequence}/")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        f"Event #{failed.sequence} auth.login.failed"
    )
    expect(page.get_by_text("A password sign-in failed,")).to_be_visible()
    details = page.get_by_role("region", name="Details")
    expect(details.locator("pre")).to_contain_text(f'"email": "{requester.email}"')
    integrity = page.get_by_role("region", name="Integrity")
    expect(integrity.locator(".status")).to_have_text("Verified")
    expect(integrity.locator(".status")).to_have_class(re.compile(r"\bstatus--ok\b"))
    expect(integrity.get_by_text("· signature verifies")).to_be_visible()
    expect(
        integrity.get_by_text("The audit path leads from this event's leaf hash to the signed root")
    ).to_be_visible()
    expect(integrity.get_by_text("Does not match")).to_have_count(0)
    page.screenshot(path=screenshot_dir / "auditor-event.png", full_page=True)

    page.go_back()
    expect(page.get_by_role("heading", level=1)).to_have_text("Audit log")
    expect(rows).to_have_count(auth_count)

    # Make the step-up deterministic: the sign-in verification is now older than the window, and
    # the authenticator shows a code for a later step than the one used to sign in (the server
    # refuses a code from a step it has already accepted).
    stale_in = signed_in_by + STEP_UP_WINDOW + 0.5 - time.time()
    if stale_in > 0:
        time.sleep(stale_in)
    wait_for_step_after(device.last_t)

    page.get_by_role("link", name="Export evidence…").click()
    expect(page).to_have_url(f"{base}/audit/export/?action=auth.")
    expect(page.get_by_role("heading", level=1)).to_have_text("Export evidence")
    holds = page.get_by_role("region", name="This export will hold")
    expect(holds).to_contain_text("auth. and every action in that family")
    expect(
        holds.get_by_text("You will be asked for a code from your authenticator app first.")
    ).to_be_visible()
    download_button = page.get_by_role("button", name="Download evidence bundle")
    download_button.click()

    # Step-up: a fresh code, then back to the same export.
    expect(page).to_have_url(f"{base}/mfa/verify/?next=%2Faudit%2Fexport%2F%3Faction%3Dauth.")
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm it's you")
    expect(page.get_by_text("Confirm it's you before exporting audit evidence.")).to_be_visible()
    page.get_by_label("Code", exact=True).fill(current_code(device))
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(f"{base}/audit/export/?action=auth.")
    expect(page.get_by_text("You will be asked for a code")).to_have_count(0)

    with page.expect_download() as download_info:
        download_button.click()
    download = download_info.value
    assert download.failure() is None
    assert re.fullmatch(r"gatehouse-evidence-\d{8}T\d{6}Z\.zip", download.suggested_filename)
    bundle = tmp_path / "bundle.zip"
    download.save_as(bundle)

    # The export is itself in the ledger, with the SHA-256 of exactly these bytes.
    exported = AuditEvent.objects.get(action="audit.exported")
    assert exported.actor_id == auditor.pk
    assert exported.data["bundle_sha256"] == hashlib.sha256(bundle.read_bytes()).hexdigest()
    assert exported.data["filters"] == {"action": "auth."}

    with zipfile.ZipFile(bundle) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        archive.extract("verify_bundle.py", tmp_path)
    tree_size = manifest["checkpoint"]["tree_size"]
    assert manifest["filters"] == {"action": "auth."}
    # Every sign-in event up to the export's checkpoint, the step-up code included.
    assert manifest["event_count"] == exported.data["event_count"] == auth_count + 1
    assert (
        AuditEvent.objects.filter(action__startswith="auth.", sequence__lte=tree_size).count()
        == auth_count + 1
    )

    # Offline, with the verifier shipped inside the bundle; then pinned to the published keys.
    verify = [sys.executable, "verify_bundle.py", "bundle.zip"]
    result = subprocess.run(verify, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"OK: {auth_count + 1} events match checkpoint"), result.stdout

    keys = page.request.get(f"{base}/audit/keys")
    assert keys.ok
    (tmp_path / "keys.json").write_bytes(keys.body())
    result = subprocess.run(
        [*verify, "--trusted-keys", "keys.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "keys pinned by --trusted-keys" in result.stdout


def test_non_auditor_finds_no_audit_pages(page: Page, live_server: Any, requester: User) -> None:
    login_with_totp(page, live_server, requester)
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Catalog")).to_be_visible()
    expect(nav.get_by_role("link", name="Audit")).to_have_count(0)

    response = page.goto(f"{live_server.url}/audit/")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
    expect(page.get_by_role("table")).to_have_count(0)
    expect(nav.get_by_role("link", name="Catalog")).to_be_visible()
    expect(nav.get_by_role("link", name="Audit")).to_have_count(0)
