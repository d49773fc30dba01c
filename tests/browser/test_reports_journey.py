"""An auditor opens the reports, finds the breaches in the approvals report, and exports it as
a signed PDF bundle after a step-up code; the bundle verifies offline with its own verifier."""

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

from accessreq.models import Approval, RiskTier
from audit.models import AuditEvent
from portal.models import User
from tests.accessreq.workflow_helpers import approve, make_entitlement, submit
from tests.browser.conftest import login_with_totp, wait_for_step_after
from tests.conftest import current_code

STEP_UP_WINDOW = 8  # seconds; see test_auditor_journey.py


def test_auditor_finds_a_breach_and_exports_a_signed_pdf(
    page: Page,
    live_server: Any,
    screenshot_dir: Path,
    tmp_path: Path,
    settings: Any,
    auditor: User,
    requester: User,
    manager: User,
    owner: User,
) -> None:
    settings.MFA_STEP_UP_SECONDS = STEP_UP_WINDOW
    read = make_entitlement(tier=RiskTier.LOW, owners=[owner], name="read-logs")
    clean = approve(manager, submit(requester, read))
    deploy = make_entitlement(tier=RiskTier.MEDIUM, owners=[owner], name="deploy")
    selfish = approve(manager, submit(requester, deploy))
    # An edit made outside the workflow: the requester is now the recorded approver.
    Approval.objects.filter(request=selfish).update(approver=requester)
    base = live_server.url

    device = login_with_totp(page, live_server, auditor)
    signed_in_by = time.time()
    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("link", name="Reports").click()
    expect(page).to_have_url(f"{base}/reports/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Reports")
    page.get_by_role("link", name="Approvals", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Approvals")

    rows = page.get_by_role("table").locator("tbody tr")
    expect(rows).to_have_count(2)
    flagged = rows.filter(has=page.get_by_role("link", name=f"#{selfish.pk}", exact=True))
    expect(flagged.locator("td.breach")).to_contain_text("Requester approved it")
    ok = rows.filter(has=page.get_by_role("link", name=f"#{clean.pk}", exact=True))
    expect(ok.locator("td.breach")).to_have_count(0)
    expect(ok).to_contain_text("Mina Manager")
    page.screenshot(path=screenshot_dir / "report-approvals.png", full_page=True)

    # Narrow to the medium tier: only the flagged request is left.
    page.get_by_label("Risk tier").select_option("medium")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"/reports/approvals/\?(.*&)?tier=medium"))
    expect(rows).to_have_count(1)

    stale_in = signed_in_by + STEP_UP_WINDOW + 0.5 - time.time()
    if stale_in > 0:
        time.sleep(stale_in)
    wait_for_step_after(device.last_t)
    page.get_by_label("Export as").select_option("pdf")
    page.get_by_role("button", name="Export signed bundle").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm it's you")
    expect(page.get_by_text("Confirm it's you before exporting a report.")).to_be_visible()
    page.get_by_label("Code", exact=True).fill(current_code(device))
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Verify").click()
    download = download_info.value
    assert download.failure() is None
    assert re.fullmatch(
        r"gatehouse-approvals-\d{8}T\d{6}Z-pdf-signed\.zip", download.suggested_filename
    )
    bundle = tmp_path / "bundle.zip"
    download.save_as(bundle)

    exported = AuditEvent.objects.get(action="report.exported")
    assert exported.actor_id == auditor.pk
    assert exported.data["sha256"] == hashlib.sha256(bundle.read_bytes()).hexdigest()
    assert exported.data["parameters"]["tier"] == "medium"
    assert exported.data["rows"] == 1
    with zipfile.ZipFile(bundle) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        archive.extract("verify_bundle.py", tmp_path)
        pdf = archive.read(manifest["report"]["file"])
    assert pdf.startswith(b"%PDF-")
    (screenshot_dir / "report-approvals.pdf").write_bytes(pdf)
    result = subprocess.run(
        [sys.executable, "verify_bundle.py", "bundle.zip"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "files intact" in result.stdout
