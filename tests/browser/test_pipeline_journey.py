"""A pipeline script (bash, using the installed ``gatehouse`` CLI) against the live server:
it exchanges a locally signed GitHub Actions ID token (keys served by a real local JWKS server),
is refused before approval, opens a deployment approval and waits; an approver approves it in
the browser with a step-up code; the script's authorization is then allowed, and the ledger
holds the whole trail with the commit."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from accessreq.models import (
    ApproverRule,
    ClaimFormat,
    DeploymentApproval,
    TrustedIssuer,
    TrustRule,
)
from audit.models import AuditEvent
from tests.accessreq.api.conftest import (  # noqa: F401 - fixtures used by this module
    AUDIENCE,
    REPOSITORY,
    JwksServer,
    SigningKey,
    ec_key,
    github_claims,
    jwks_server,
    make_service_account,
    rsa_key,
    sign,
)
from tests.accessreq.workflow_helpers import direct_grant, make_entitlement, make_policy
from tests.browser.conftest import login_with_totp, wait_for_step_after
from tests.conftest import current_code
from tests.factories import UserFactory

SHA = "4f2a9c1e0b7d5a3c2e1f0a9b8c7d6e5f4a3b2c1d"
GATEHOUSE = Path(sys.executable).parent / "gatehouse"

SCRIPT = """
set -u
GATEHOUSE_TOKEN="$(gatehouse token exchange --id-token-file "$ID_TOKEN_FILE")" || exit 10
export GATEHOUSE_TOKEN
if gatehouse authorize --system "$SYSTEM" --environment prod > before.json; then
  echo "allowed before any approval" >&2; exit 11
fi
gatehouse deploy request --system "$SYSTEM" --environment prod \\
  --check tests=passed --check scan=passed \\
  --artifact-digest "sha256:$(printf 'ab%.0s' $(seq 32))" \\
  --link "CI run=https://ci.example.com/runs/812345" \\
  --wait --timeout 240 --interval 1 > deployment.json || exit 12
gatehouse authorize --system "$SYSTEM" --environment prod > after.json || exit 13
echo "deploying $GITHUB_SHA"
"""


def test_pipeline_script_is_approved_in_the_browser_and_deploys(
    page: Page,
    live_server: Any,
    screenshot_dir: Path,
    settings: Any,
    tmp_path: Path,
    jwks_server: JwksServer,  # noqa: F811
    rsa_key: SigningKey,  # noqa: F811
) -> None:
    settings.MFA_STEP_UP_SECONDS = 2  # the approver's sign-in goes stale: the inbox asks a code
    owner = UserFactory(display_name="Omar Owner", email="omar@example.com")
    releaser = UserFactory(display_name="Rita Releaser", email="rita@example.com")
    policy = make_policy("Prod deploys", (ApproverRule.SYSTEM_OWNER, 1, True))
    entitlement = make_entitlement(
        tier="high", owners=[owner], system_owners=[releaser, owner], policy=policy
    )
    prod = entitlement.environment
    prod.name, prod.slug, prod.requires_deployment_approval = "prod", "prod", True
    prod.save()
    account = make_service_account("payments-deployer", owner)
    direct_grant(account, entitlement)
    issuer = TrustedIssuer.objects.create(
        name="GitHub Actions",
        issuer="https://token.actions.githubusercontent.com",
        audience=AUDIENCE,
        jwks_url=jwks_server.url,
        claim_format=ClaimFormat.GITHUB,
    )
    TrustRule.objects.create(
        issuer=issuer,
        service_account=account,
        repository=REPOSITORY,
        ref="refs/heads/main",
        created_by=owner,
    )
    id_token = tmp_path / "id-token"
    id_token.write_text(sign(github_claims(sha=SHA), rsa_key))

    device = login_with_totp(page, live_server, releaser)
    signed_in_at = time.time()

    env = {
        "PATH": f"{GATEHOUSE.parent}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "GATEHOUSE_URL": live_server.url,
        "ID_TOKEN_FILE": str(id_token),
        "SYSTEM": entitlement.system.slug,
        "GITHUB_SHA": SHA,
        "GITHUB_RUN_ID": "812345",
        "GITHUB_JOB": "deploy-prod",
        "GITHUB_REPOSITORY": REPOSITORY,
        "GITHUB_REF": "refs/heads/main",
    }
    script = subprocess.Popen(
        ["bash", "-c", SCRIPT],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 60
        while not DeploymentApproval.objects.exists():
            assert script.poll() is None, script.communicate()
            assert time.time() < deadline, "the script never opened a deployment approval"
            time.sleep(0.2)
        deployment = DeploymentApproval.objects.get()
        assert (tmp_path / "before.json").read_text().count("deployment_approval_required")

        # A new code (the sign-in's step can't be reused), and a sign-in older than the window.
        wait_for_step_after(device.last_t)
        time.sleep(max(0.0, signed_in_at + settings.MFA_STEP_UP_SECONDS + 1 - time.time()))
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Approvals").click()
        card = page.locator(f"#deployment-{deployment.pk}")
        expect(card.get_by_text(SHA)).to_be_visible()
        expect(card.get_by_text("Code needed", exact=True)).to_be_visible()
        expect(card.get_by_role("link", name="CI run")).to_have_attribute(
            "href", "https://ci.example.com/runs/812345"
        )
        expect(card.get_by_text("tests", exact=True)).to_be_visible()
        card.get_by_label("Authenticator code").fill(current_code(device))
        page.screenshot(path=screenshot_dir / "pipeline-deployment-card.png", full_page=True)
        card.get_by_role("button", name="Approve deployment with code").click()
        expect(page.get_by_role("status")).to_contain_text("the pipeline may deploy this commit")
        page.screenshot(path=screenshot_dir / "pipeline-deployment-approved.png", full_page=True)

        out, err = script.communicate(timeout=60)
    finally:
        if script.poll() is None:
            script.kill()
            script.communicate()
    assert script.returncode == 0, (out, err)
    assert f"deploying {SHA}" in out
    assert '"decision": "allow"' in (tmp_path / "after.json").read_text()

    trail = list(
        AuditEvent.objects.filter(
            action__in=[
                "api.token.exchanged",
                "api.authorize.denied",
                "deployment.requested",
                "deployment.approval_given",
                "deployment.approved",
                "deployment.used",
                "api.authorize.allowed",
            ]
        ).order_by("sequence")
    )
    assert [e.action for e in trail] == [
        "api.token.exchanged",
        "api.authorize.denied",
        "deployment.requested",
        "deployment.approval_given",
        "deployment.approved",
        "deployment.used",
        "api.authorize.allowed",
    ]
    assert all(e.pipeline.get("commit_sha") == SHA for e in trail)
    approved = trail[4]
    assert approved.actor_id == releaser.pk
    assert approved.data["environment"] == "prod"
    assert approved.pipeline["stage"] == "deploy-prod"
    assert approved.data["approvers"][0]["name"] == str(releaser)
    allowed = trail[-1]
    assert allowed.actor_id == account.pk
    assert allowed.data["deployment_id"] == deployment.pk
    assert allowed.data["approvers"] == [str(releaser)]
