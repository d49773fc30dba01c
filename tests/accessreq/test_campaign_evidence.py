"""The campaign evidence report in HTML, CSV and PDF, plain and signed: who may get it, that it
holds every item's decision and remediation, that a spreadsheet can't run what it holds, that the
signature verifies offline and breaks when one byte changes, and that every download is audited
and needs a fresh second factor."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import time
import zipfile
import zlib

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accessreq.campaign_states import ReviewDecision
from accessreq.evidence.pdf import pdf_text
from accessreq.models import Connector, ConnectorKind, Grant, ProvisioningTask, ReviewItem
from accessreq.services.campaigns import campaign_close
from accessreq.services.provisioning import provisioning_confirm
from audit.models import AuditEvent
from audit.verify_bundle import verify
from tests.accessreq.test_campaign_views import FORMULA_NAME, World, build_campaign, bulk_campaign

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("signing_key_file")]


@pytest.fixture
def world(requester, manager, owner, security_admin) -> World:
    return build_campaign(requester, manager, owner, security_admin)


def url(world: World, fmt: str, signed: bool = False) -> str:
    return f"/campaigns/{world.campaign.pk}/evidence.{fmt}" + ("?signed=1" if signed else "")


def exported() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="campaign.evidence_exported").order_by("sequence"))


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def csv_items(data: bytes) -> dict[str, dict[str, str]]:
    """The item rows of the evidence CSV (after its header block), by item id."""
    lines = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    start = next(i for i, line in enumerate(lines) if line[:2] == ["item", "holder"])
    header = lines[start]
    return {row[0]: dict(zip(header, row, strict=True)) for row in lines[start + 1 :]}


def pdf_strings(data: bytes) -> str:
    """The text drawn on the PDF's pages (its content streams, inflated)."""
    texts = []
    # Each content stream is exactly /Length bytes after its "stream" line.
    for match in re.finditer(rb"/Length (\d+)[^>]*>>\s*stream\r?\n", data):
        chunk = data[match.end() : match.end() + int(match.group(1))]
        try:
            texts.append(zlib.decompress(chunk).decode("latin-1"))
        except zlib.error:
            continue
    return "\n".join(texts).replace("\\(", "(").replace("\\)", ")")


# --- Who may export ----------------------------------------------------------------------------


def test_anonymous_goes_to_login(client, world) -> None:
    for fmt in ("html", "csv", "pdf"):
        response = client.get(url(world, fmt))
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert not exported()


def test_outsiders_and_reviewers_get_404(verified_client, outsider, manager, world) -> None:
    for person in (outsider, manager):
        client = verified_client(person)
        for fmt in ("html", "csv", "pdf"):
            assert client.get(url(world, fmt)).status_code == 404
            assert client.get(url(world, fmt, signed=True)).status_code == 404
    assert not exported()


def test_unknown_format_or_campaign_is_404(verified_client, auditor, world) -> None:
    client = verified_client(auditor)
    assert client.get(f"/campaigns/{world.campaign.pk}/evidence.xlsx").status_code == 404
    assert client.get("/campaigns/999999/evidence.csv").status_code == 404
    assert client.post(url(world, "csv")).status_code == 405
    assert not exported()


def test_a_stale_second_factor_is_asked_again(verified_client, auditor, world) -> None:
    client = verified_client(auditor)
    session = client.session
    session["mfa_verified_at"] = time.time() - 3600
    session.save()
    response = client.get(url(world, "csv"))
    assert response.status_code == 302
    assert response["Location"].startswith("/mfa/verify/?next=")
    assert "evidence.csv" in response["Location"]
    assert not exported()


# --- The three formats -------------------------------------------------------------------------


def test_html_report_has_every_item_and_is_audited(verified_client, auditor, world) -> None:
    response = verified_client(auditor).get(url(world, "html"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Quarterly prod review" in page
    assert "Certified" in page and "Revoked" in page and "Pending" in page
    assert "Moved to the data team" in page
    assert "Mina Manager" in page and "totp" in page
    # Escaped, never markup; styles come from our CSS file (strict CSP).
    assert "=HYPERLINK(&quot;http://evil.example/&quot;" in page
    assert "<style" not in page
    (event,) = exported()
    assert event.actor_id == auditor.pk
    assert event.data["format"] == "html" and event.data["items"] == 3
    assert event.target_id == str(world.campaign.pk)


def test_csv_has_every_decision_and_neutralises_formulas(
    verified_client, auditor, manager, world
) -> None:
    response = verified_client(auditor).get(url(world, "csv"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    data = body(response)
    rows = csv_items(data)
    assert set(rows) == {str(i.pk) for i in ReviewItem.objects.filter(campaign=world.campaign)}
    certified, revoked = rows[str(world.certified.pk)], rows[str(world.revoked.pk)]
    assert certified["decision"] == "certified" and certified["decided by"] == "Mina Manager"
    assert certified["mfa method"] == "totp" and certified["mfa age seconds"] == "10"
    assert revoked["decision"] == "revoked" and revoked["comment"] == "Moved to the data team"
    assert revoked["revoked"] == "yes" and revoked["revoked at"]
    assert rows[str(world.pending.pk)]["decision"] == "pending"
    # A spreadsheet shows the holder's name as text instead of running it.
    assert certified["holder"] == "'" + FORMULA_NAME
    assert all(not cell.startswith("=") for row in rows.values() for cell in row.values())
    (event,) = exported()
    assert event.data["format"] == "csv" and not event.data["signed"]
    assert event.data["sha256"] == hashlib.sha256(data).hexdigest()
    assert event.actor_id == auditor.pk


def test_pdf_has_the_campaign_and_every_decision(verified_client, security_admin, world) -> None:
    response = verified_client(security_admin).get(url(world, "pdf"))
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    data = body(response)
    assert data.startswith(b"%PDF")
    assert b"Quarterly prod review" in data  # the document title
    text = pdf_strings(data)
    assert "Quarterly prod review" in text
    for word in ("Certified", "Revoked", "Pending", "Moved to the data team", "Page 1/"):
        assert word in text, word
    (event,) = exported()
    assert (
        event.data["format"] == "pdf" and event.data["sha256"] == hashlib.sha256(data).hexdigest()
    )


def test_pdf_copes_with_text_outside_latin_1(
    verified_client, requester, manager, owner, security_admin
) -> None:
    world = build_campaign(
        requester, manager, owner, security_admin, holder_name="Łukasz Żółć 🚀 — 東京"
    )
    data = body(verified_client(security_admin).get(url(world, "pdf")))
    assert data.startswith(b"%PDF")
    assert "Lukasz Zólc ? - ??" in pdf_strings(data)
    assert pdf_text("Łódź “quoted” …\tend") == 'Lódz "quoted" ... end'


def test_remediation_waits_for_the_connector_and_shows_its_time(
    verified_client, requester, manager, owner, security_admin
) -> None:
    desk = Connector.objects.create(name="ops desk", kind=ConnectorKind.MANUAL)
    world = build_campaign(requester, manager, owner, security_admin, connector=desk)
    client = verified_client(security_admin)
    row = csv_items(body(client.get(url(world, "csv"))))[str(world.revoked.pk)]
    assert row["remediation"] == "Waiting for connector" and row["remediated at"] == ""
    task = ProvisioningTask.objects.get(grant_id=world.revoked.grant_id, operation="deprovision")
    provisioning_confirm(actor=security_admin, task_id=task.pk)
    grant = Grant.objects.get(pk=world.revoked.grant_id)
    assert grant.deprovisioned_at is not None
    row = csv_items(body(client.get(url(world, "csv"))))[str(world.revoked.pk)]
    assert row["remediation"] == "Removed, confirmed by the connector"
    assert row["remediated at"] == grant.deprovisioned_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert csv_items(body(client.get(url(world, "csv"))))[str(world.certified.pk)][
        "remediation"
    ] == ("Kept (certified)")


def test_items_closed_by_the_deadline_action_are_listed(
    verified_client, security_admin, world
) -> None:
    campaign_close(campaign_id=world.campaign.pk, actor=security_admin, early=True)
    client = verified_client(security_admin)
    row = csv_items(body(client.get(url(world, "csv"))))[str(world.pending.pk)]
    assert row["decision"] == "expired"
    assert row["closed by deadline action"] == "Revoke what was not reviewed"
    assert row["revoked"] == "yes" and row["remediation"].startswith("Removed")
    page = client.get(url(world, "html")).content.decode()
    assert "Closed by the deadline action (1)" in page and "Interim report" not in page
    text = pdf_strings(body(client.get(url(world, "pdf"))))
    assert "Closed by the deadline action (1)" in text


def test_evidence_queries_do_not_grow_with_items(verified_client, security_admin, manager) -> None:
    small = bulk_campaign(10, manager=manager, security_admin=security_admin, name="Small")
    large = bulk_campaign(1000, manager=manager, security_admin=security_admin, name="Large")
    client = verified_client(security_admin)
    for fmt in ("csv", "html"):
        counts, contents = [], []
        for campaign in (small, large):
            with CaptureQueriesContext(connection) as queries:
                contents.append(body(client.get(f"/campaigns/{campaign.pk}/evidence.{fmt}")))
            counts.append(len(queries))
        assert counts[0] == counts[1], (fmt, counts)
        if fmt == "csv":
            assert len(csv_items(contents[1])) == 1000


# --- Signed ------------------------------------------------------------------------------------


def test_signed_bundle_verifies_offline_and_breaks_on_one_byte(
    verified_client, auditor, world, tmp_path
) -> None:
    client = verified_client(auditor)
    response = client.get(url(world, "csv", signed=True))
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    data = body(response)
    bundle = tmp_path / "bundle.zip"
    bundle.write_bytes(data)
    assert verify(str(bundle)) == []

    with zipfile.ZipFile(bundle) as archive:
        names = archive.namelist()
        manifest_raw = archive.read("manifest.json")
        signature = archive.read("manifest.sig")
        report_name = next(n for n in names if n.endswith(".csv") and n.startswith("campaign-"))
        report = archive.read(report_name)
        ledger = [json.loads(line) for line in archive.read("events.jsonl").splitlines()]
    manifest = json.loads(manifest_raw)
    assert manifest["campaign"]["id"] == world.campaign.pk
    assert manifest["files"][report_name]["sha256"] == hashlib.sha256(report).hexdigest()
    # The report inside holds every decision; the ledger events prove each one.
    rows = csv_items(report)
    assert rows[str(world.revoked.pk)]["decision"] == "revoked"
    actions = [event["action"] for event in ledger]
    assert "campaign.launched" in actions and actions.count("review.certified") == 1
    assert actions.count("review.revoked") == 1 and "grant.revoked" in actions

    # The manifest's signature verifies with the key Gatehouse publishes at /audit/keys.
    keys = client.get("/audit/keys").json()
    published = {k["key_id"]: k["public_key"] for k in keys["keys"]}
    public = Ed25519PublicKey.from_public_bytes(
        bytes.fromhex(published[manifest["signing_key_id"]])
    )
    public.verify(signature, manifest_raw)
    changed = bytearray(manifest_raw)
    changed[10] ^= 1
    with pytest.raises(InvalidSignature):
        public.verify(signature, bytes(changed))

    # One byte of the report changed: the offline verifier names the file.
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(bundle) as source, zipfile.ZipFile(tampered, "w") as target:
        for info in source.infolist():
            content = source.read(info)
            if info.filename == report_name:
                content = content.replace(b"revoked", b"certifi", 1)
            target.writestr(info, content)
    problems = verify(str(tampered))
    assert any(report_name in problem and "SHA-256" in problem for problem in problems)

    (event,) = exported()
    assert event.data["signed"] and event.data["format"] == "csv"
    assert event.data["sha256"] == hashlib.sha256(data).hexdigest()
    assert event.data["manifest_sha256"] == hashlib.sha256(manifest_raw).hexdigest()
    assert event.data["report_sha256"] == hashlib.sha256(report).hexdigest()


def test_signed_pdf_and_html_bundles_verify(verified_client, security_admin, world, tmp_path):
    client = verified_client(security_admin)
    for fmt in ("pdf", "html"):
        data = body(client.get(url(world, fmt, signed=True)))
        path = tmp_path / f"{fmt}.zip"
        path.write_bytes(data)
        assert verify(str(path)) == []
        with zipfile.ZipFile(path) as archive:
            report = next(n for n in archive.namelist() if n.endswith(f".{fmt}"))
            content = archive.read(report)
        if fmt == "pdf":
            assert content.startswith(b"%PDF")
        else:
            assert b"<!doctype html>" in content and b"Moved to the data team" in content
    assert [e.data["format"] for e in exported()] == ["pdf", "html"]


def test_every_download_is_an_audit_event(verified_client, auditor, world) -> None:
    client = verified_client(auditor)
    for fmt in ("html", "csv", "pdf"):
        assert client.get(url(world, fmt)).status_code == 200
    assert [e.data["format"] for e in exported()] == ["html", "csv", "pdf"]
    assert ReviewItem.objects.filter(decision=ReviewDecision.PENDING).count() == 1
