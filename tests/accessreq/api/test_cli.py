"""The ``gatehouse`` console script as a CI step runs it: a separate process, standard library
only, with exit codes a pipeline can branch on (the full journey is in tests/browser)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from accessreq.models import DeploymentApproval
from accessreq.services.deployments import deployment_deny
from portal.models import User
from tests.accessreq.api.conftest import Pipeline, minted

GATEHOUSE = str(Path(sys.executable).parent / "gatehouse")
SHA = "4f2a9c1e0b7d5a3c2e1f0a9b8c7d6e5f4a3b2c1d"


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GATEHOUSE, *args],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_cli_needs_no_django() -> None:
    code = "import sys, gatehouse_cli.main; sys.exit('django' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_usage_and_network_errors_have_their_exit_codes() -> None:
    no_url = run("authorize", "--system", "s", "--environment", "prod", "--token", "x")
    assert no_url.returncode == 2 and "GATEHOUSE_URL" in no_url.stderr
    no_id_token = run("token", "exchange", GATEHOUSE_URL="http://127.0.0.1:9")
    assert no_id_token.returncode == 2 and "no CI identity token" in no_id_token.stderr
    bad_flag = run("deploy", "request", "--system", "s")
    assert bad_flag.returncode == 2
    unreachable = run(
        "authorize",
        "--system",
        "s",
        "--environment",
        "prod",
        GATEHOUSE_URL="http://127.0.0.1:9",
        GATEHOUSE_TOKEN="gtm_x",
    )
    assert unreachable.returncode == 4 and "cannot reach" in unreachable.stderr


@pytest.fixture
def low_tier(pipeline: Pipeline, security_admin: User) -> Pipeline:
    environment = pipeline.entitlement.environment
    environment.risk_tier = "low"
    environment.save()
    return pipeline


def test_wait_times_out_with_3_and_a_denial_is_1(
    low_tier: Pipeline, security_admin: User, live_server: Any
) -> None:
    env = {"GATEHOUSE_URL": live_server.url, "GATEHOUSE_TOKEN": minted(low_tier).secret}
    target = [
        "--system",
        low_tier.entitlement.system.slug,
        "--environment",
        low_tier.entitlement.environment.slug,
        "--commit",
        SHA,
    ]
    waited = run(
        "deploy", "request", *target, "--wait", "--timeout", "1", "--interval", "0.5", **env
    )
    assert waited.returncode == 3, waited.stderr
    assert "no decision" in waited.stderr

    deployment = DeploymentApproval.objects.get()
    deployment_deny(actor=security_admin, deployment_id=deployment.pk, comment="Not today")
    status = run("deploy", "status", str(deployment.pk), **env)
    assert status.returncode == 1 and '"state": "denied"' in status.stdout
    environment = low_tier.entitlement.environment
    environment.requires_deployment_approval = True
    environment.save()
    refused = run("authorize", *target, **env)
    assert refused.returncode == 1
    assert "deployment_denied" in refused.stderr and '"decision": "deny"' in refused.stdout
    missing = run(
        "deploy", "request", *target[:4], "--commit", "1" * 40, "--check", "tests=failed", **env
    )
    assert missing.returncode == 0  # nothing is required at low tier; opened
    wrong_token = run(
        "deploy",
        "status",
        str(deployment.pk),
        GATEHOUSE_URL=live_server.url,
        GATEHOUSE_TOKEN="gtm_" + "a" * 43,
    )
    assert wrong_token.returncode == 2 and "invalid_token" in wrong_token.stderr
