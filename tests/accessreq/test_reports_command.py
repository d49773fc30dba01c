"""``manage.py report_export``: the same signed bundle as the page, whatever its size, and a
clear error naming the problem for a wrong report, parameter or person."""

from __future__ import annotations

import json
import zipfile
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command

from accessreq.models import RiskTier
from audit.models import AuditEvent
from audit.services import record
from audit.verify_bundle import verify
from tests.accessreq.workflow_helpers import direct_grant, make_entitlement
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("signing_key_file")]


def test_the_command_writes_a_bundle_that_verifies_and_records_it(tmp_path, auditor, owner):
    deploy = make_entitlement(tier=RiskTier.HIGH, owners=[owner], name="deploy")
    for n in range(4):
        direct_grant(UserFactory(), deploy, started_ago=timedelta(hours=n + 1))
    record(actor=auditor, action="auth.login", target=auditor)  # a ledger to sign a checkpoint of
    output = tmp_path / "access.zip"
    call_command(
        "report_export",
        "access-as-of",
        "--format",
        "xlsx",
        "--param",
        "tier=high",
        "--as",
        auditor.email,
        "-o",
        str(output),
    )
    assert verify(str(output)) == []
    manifest = json.loads(zipfile.ZipFile(output).read("manifest.json"))
    assert manifest["report"]["rows"] == 4 and manifest["report"]["parameters"]["tier"] == "high"
    event = AuditEvent.objects.get(action="report.exported")
    assert event.actor_id == auditor.pk and event.data["delivery"] == "command"
    assert not list(tmp_path.glob(".*.partial"))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["no-such-report"], "No report 'no-such-report'"),
        (["approvals", "--param", "since"], "write it as NAME=VALUE"),
        (["approvals", "--param", "since=last tuesday"], "since: Enter a date and time"),
        (["approvals", "--as", "nobody@example.com"], "is not an auditor or security admin"),
    ],
)
def test_bad_input_is_named_and_writes_nothing(tmp_path, argv, message):
    output = tmp_path / "out.zip"
    with pytest.raises(CommandError, match=message):
        call_command("report_export", *argv, "-o", str(output))
    assert not output.exists() and not list(tmp_path.iterdir())
    assert not AuditEvent.objects.filter(action="report.exported").exists()
