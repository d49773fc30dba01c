"""The report pages and their exports as an auditor uses them: who may open them, that every
export is a signed bundle the offline verifier accepts (and rejects after one changed byte),
that spreadsheets can't run what a report holds, that exports are audited and need a fresh
second factor, that big ones are built in the background with progress, and that an auditor
changes nothing."""

from __future__ import annotations

import csv
import io
import json
import time
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accessreq.models import AccessRequest, ExportState, Grant, ReportExport, RiskTier
from accessreq.reports.base import all_reports
from accessreq.services.common import now
from accessreq.services.reports import report_exports_sweep
from audit.models import AuditEvent
from audit.verify_bundle import verify
from tests.accessreq.workflow_helpers import direct_grant, make_entitlement
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("signing_key_file")]

FORMULA = '=HYPERLINK("http://evil.example/","click")'


@pytest.fixture
def holders(owner) -> list[Grant]:
    deploy = make_entitlement(tier=RiskTier.HIGH, owners=[owner], name="deploy")
    people = [UserFactory(display_name=f"Holder {n:02d}") for n in range(3)]
    grants = [direct_grant(person, deploy, started_ago=timedelta(hours=1)) for person in people]
    AccessRequest.objects.filter(pk=grants[0].request_id).update(justification=FORMULA)
    return grants


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("sequence"))


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def stale(client) -> None:
    session = client.session
    session["mfa_verified_at"] = time.time() - 3600
    session.save()


def unzip(data: bytes, tmp_path: Path) -> tuple[Path, zipfile.ZipFile]:
    path = tmp_path / "export.zip"
    path.write_bytes(data)
    return path, zipfile.ZipFile(path)


# --- Who may look ------------------------------------------------------------------------------


def test_only_auditors_and_security_admins_see_reports(
    client, verified_client, auditor, security_admin, outsider, manager, holders
):
    assert "/accounts/login/" in client.get("/reports/")["Location"]
    for person in (outsider, manager):
        other = verified_client(person)
        assert other.get("/reports/").status_code == 404
        for report in all_reports():
            assert other.get(f"/reports/{report.slug}/").status_code == 404
            assert other.get(f"/reports/{report.slug}/export/?format=csv").status_code == 404
    for person in (auditor, security_admin):
        reader = verified_client(person)
        index = reader.get("/reports/")
        assert index.status_code == 200
        for report in all_reports():
            assert f'href="/reports/{report.slug}/"' in index.content.decode()
            assert reader.get(f"/reports/{report.slug}/").status_code == 200
    assert verified_client(auditor).get("/reports/no-such-report/").status_code == 404
    assert not events("report.exported")


def test_the_report_page_shows_rows_links_and_records_the_view(verified_client, auditor, holders):
    response = verified_client(auditor).get("/reports/access-as-of/")
    page = response.content.decode()
    assert response.status_code == 200
    for grant in holders:
        assert f'href="/access/{grant.pk}/"' in page
        assert grant.beneficiary.display_name in page
    assert "3 rows" in page
    # Escaped, never markup.
    assert "=HYPERLINK(&quot;http://evil.example/&quot;" in page
    (viewed,) = events("report.viewed")
    assert viewed.actor_id == auditor.pk and viewed.data["report"] == "access-as-of"


def test_a_report_with_no_rows_says_so_and_still_offers_the_export(verified_client, auditor):
    page = verified_client(auditor).get("/reports/dormant/").content.decode()
    assert "No rows match these parameters." in page
    assert "0 rows" in page and "Export signed bundle" in page
    assert "more than 30 days" in page  # the default, stated


def test_bad_parameters_get_a_form_error_and_change_nothing(verified_client, auditor, holders):
    client = verified_client(auditor)
    response = client.get("/reports/approvals/?since=yesterday")
    assert response.status_code == 400
    assert "Enter a date and time" in response.content.decode()
    response = client.get("/reports/approvals/?since=2026-05-01 00:00&until=2026-04-01 00:00")
    assert response.status_code == 400
    assert "The period must end after it starts." in response.content.decode()
    response = client.get("/reports/approvals/export/?format=csv&since=yesterday")
    assert response.status_code == 302
    assert "not valid" in " ".join(str(m) for m in response.wsgi_request._messages)
    response = client.get("/reports/approvals/export/?format=docx")
    assert response.status_code == 302
    assert not events("report.viewed") and not events("report.exported")


def test_page_queries_stay_the_same_with_more_rows(verified_client, auditor, owner):
    client = verified_client(auditor)
    deploy = make_entitlement(tier=RiskTier.HIGH, owners=[owner], name="deploy")

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/reports/approvals/").status_code == 200
            assert client.get("/reports/access-as-of/").status_code == 200
        return len(captured)

    direct_grant(UserFactory(), deploy)
    few = queries()
    for _ in range(12):
        direct_grant(UserFactory(), deploy)
    assert queries() == few


# --- Exports -----------------------------------------------------------------------------------


def test_an_export_needs_a_fresh_second_factor(verified_client, auditor, holders):
    client = verified_client(auditor)
    stale(client)
    response = client.get("/reports/access-as-of/export/?format=csv")
    assert response.status_code == 302
    assert response["Location"].startswith("/mfa/verify/?next=")
    assert not events("report.exported")


def test_csv_export_is_a_signed_bundle_that_verifies_and_breaks_on_one_byte(
    verified_client, auditor, holders, tmp_path
):
    response = verified_client(auditor).get("/reports/access-as-of/export/?format=csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    data = body(response)
    path, bundle = unzip(data, tmp_path)
    manifest = json.loads(bundle.read("manifest.json"))
    name = manifest["report"]["file"]
    assert name.endswith(".csv") and manifest["report"]["rows"] == 3
    assert manifest["report"]["slug"] == "access-as-of"
    assert manifest["exported_by"]["email"] == auditor.email
    assert verify(str(path)) == []

    rows = list(csv.reader(io.StringIO(bundle.read(name).decode("utf-8-sig"))))
    assert rows[0][:3] == ["Person", "Team", "Entitlement"]
    assert len(rows) == 4
    justification = rows[0].index("Justification")
    cells = [row[justification] for row in rows[1:]]
    assert "'" + FORMULA in cells  # neutralised: a spreadsheet shows it as text

    (event,) = events("report.exported")
    assert event.actor_id == auditor.pk
    assert event.data["rows"] == 3 and event.data["format"] == "csv"
    import hashlib

    assert event.data["sha256"] == hashlib.sha256(data).hexdigest()
    assert event.data["manifest_sha256"] == hashlib.sha256(bundle.read("manifest.json")).hexdigest()

    # One changed byte in the report and the bundle no longer verifies.
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(tampered, "w") as out:
        for item in bundle.infolist():
            content = bundle.read(item.filename)
            if item.filename == name:
                content = content.replace(b"Holder 01", b"Holder 07", 1)
            out.writestr(item, content)
    problems = verify(str(tampered))
    assert any(name in problem and "SHA-256" in problem for problem in problems)


def test_xlsx_and_pdf_exports_hold_the_rows(verified_client, auditor, holders, tmp_path):
    client = verified_client(auditor)
    data = body(client.get("/reports/access-as-of/export/?format=xlsx"))
    path, bundle = unzip(data, tmp_path)
    assert verify(str(path)) == []
    name = json.loads(bundle.read("manifest.json"))["report"]["file"]
    book = zipfile.ZipFile(io.BytesIO(bundle.read(name)))
    xml = "".join(
        book.read(n).decode() for n in book.namelist() if n.startswith("xl/") and n.endswith("xml")
    )
    for grant in holders:
        assert grant.beneficiary.display_name in xml
    # Written as a string, never as a formula.
    assert "<f>" not in xml
    assert "HYPERLINK" in xml

    pdf_zip = body(client.get("/reports/access-as-of/export/?format=pdf"))
    path, bundle = unzip(pdf_zip, tmp_path)
    assert verify(str(path)) == []
    name = json.loads(bundle.read("manifest.json"))["report"]["file"]
    assert bundle.read(name).startswith(b"%PDF-")
    assert [e.data["format"] for e in events("report.exported")] == ["xlsx", "pdf"]


def test_the_attempts_export_carries_its_events_checked_against_the_chain(
    client, verified_client, auditor, requester, tmp_path
):
    client.post("/accounts/login/", {"login": requester.email, "password": "wrong password"})
    data = body(verified_client(auditor).get("/reports/attempts/export/?format=csv"))
    path, bundle = unzip(data, tmp_path)
    assert verify(str(path)) == []
    lines = bundle.read("events.jsonl").decode().splitlines()
    assert [json.loads(line)["action"] for line in lines] == ["auth.login.failed"]


# --- In the background -------------------------------------------------------------------------


def test_a_big_export_is_built_by_a_worker_with_progress_and_a_download(
    verified_client, auditor, holders, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.REPORT_EXPORT_SYNC_ROWS = 2
    settings.REPORT_EXPORT_DIR = tmp_path / "exports"
    client = verified_client(auditor)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.get("/reports/access-as-of/export/?format=csv")
    export = ReportExport.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/reports/exports/{export.pk}/"
    assert export.state == ExportState.QUEUED and export.rows_total == 3
    (queued,) = events("report.export_queued")
    assert queued.data["rows"] == 3
    waiting = client.get(response["Location"]).content.decode()
    assert "<progress" in waiting and 'http-equiv="refresh"' in waiting
    assert "as of: " in waiting  # the moment the export shows, as the worker reads it

    for callback in callbacks:  # the worker's turn (tasks run eagerly in the test settings)
        callback()
    export.refresh_from_db()
    assert export.state == ExportState.READY and export.rows_done == 3
    assert export.expires_at and export.finished_at
    assert export.expires_at - export.finished_at == timedelta(hours=24)
    ready = client.get(f"/reports/exports/{export.pk}/").content.decode()
    assert f"/reports/exports/{export.pk}/download/" in ready and "<progress" not in ready
    (built,) = events("report.exported")
    assert built.data["delivery"] == "background" and built.data["sha256"] == export.sha256

    stale(client)
    assert client.get(f"/reports/exports/{export.pk}/download/")["Location"].startswith(
        "/mfa/verify/"
    )
    client = verified_client(auditor)
    data = body(client.get(f"/reports/exports/{export.pk}/download/"))
    path, _ = unzip(data, tmp_path)
    assert verify(str(path)) == []
    (downloaded,) = events("report.downloaded")
    assert downloaded.actor_id == auditor.pk

    # Someone else's export is not there for them, even another auditor.
    other = UserFactory()
    from portal.roles import AUDITOR

    other.groups.add(*auditor.groups.filter(name=AUDITOR))
    assert verified_client(other).get(f"/reports/exports/{export.pk}/").status_code == 404
    assert verified_client(other).get(f"/reports/exports/{export.pk}/download/").status_code == 404

    # After its keeping time the sweep deletes the file and says so in the ledger.
    ReportExport.objects.filter(pk=export.pk).update(expires_at=now() - timedelta(seconds=1))
    files = list((tmp_path / "exports").iterdir())
    assert len(files) == 1
    assert report_exports_sweep(actor=auditor)["deleted"] == 1
    assert not files[0].exists()
    export.refresh_from_db()
    assert export.state == ExportState.EXPIRED
    assert len(events("report.export_deleted")) == 1
    gone = client.get(f"/reports/exports/{export.pk}/download/")
    assert gone.status_code == 302


def test_an_export_whose_worker_died_is_built_again(
    verified_client, auditor, holders, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.REPORT_EXPORT_SYNC_ROWS = 2
    settings.REPORT_EXPORT_DIR = tmp_path / "exports"
    with django_capture_on_commit_callbacks(execute=False):
        verified_client(auditor).get("/reports/access-as-of/export/?format=csv")
    export = ReportExport.objects.get()
    # A worker took it and died: running, with a heartbeat ten minutes old.
    ReportExport.objects.filter(pk=export.pk).update(
        state=ExportState.RUNNING, attempts=1, heartbeat_at=now() - timedelta(minutes=10)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert report_exports_sweep(actor=auditor)["requeued"] == 1
    export.refresh_from_db()
    assert export.state == ExportState.READY and export.attempts == 2
    (requeued,) = events("report.export_requeued")
    assert requeued.data["attempts"] == 1
    assert len(events("report.exported")) == 1


# --- An auditor changes nothing ----------------------------------------------------------------


def test_an_auditor_can_post_to_nothing_in_reports_audit_or_campaigns(
    verified_client, auditor, holders
):
    client = verified_client(auditor)
    grant = holders[0]
    before = AuditEvent.objects.count()
    paths = [
        "/reports/",
        "/reports/access-as-of/",
        "/reports/access-as-of/export/",
        "/reports/exports/1/",
        "/reports/exports/1/download/",
        f"/access/{grant.pk}/revoke/",
        f"/access/{grant.pk}/extend/",
        "/campaigns/launch/",
        "/provisioning/",
        "/admin/accessreq/grant/",
        f"/admin/accessreq/grant/{grant.pk}/change/",
        f"/admin/accessreq/grant/{grant.pk}/delete/",
        "/admin/portal/user/add/",
    ]
    for path in paths:
        response = client.post(path, {"reason": "auditors may not", "post": "yes"})
        refused = response.status_code in (403, 404, 405) or (
            response.status_code == 302 and response["Location"].startswith("/admin/login/")
        )
        assert refused, (path, response.status_code)
    grant.refresh_from_db()
    assert grant.state == "active" and grant.revoked_at is None
    assert AuditEvent.objects.count() == before
