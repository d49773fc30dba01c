"""Evidence downloads: the report in a format, optionally signed, and the audit event of each.

A signed download is a ledger evidence bundle (``audit/verify_bundle.py`` format) of the campaign's
own events with the report added as one more file listed, with its SHA-256, in the Ed25519-signed
manifest; the offline verifier checks the report, the events and the signature in one run.
"""

from __future__ import annotations

import io
import tempfile
from dataclasses import dataclass
from typing import IO, Any

from django.db import transaction
from django.db.models import CharField, Q, QuerySet
from django.db.models.functions import Cast
from django.http import HttpRequest

from accessreq.errors import NotAllowed
from accessreq.evidence.dashboard import campaigns_visible_to
from accessreq.evidence.pdf import write_pdf
from accessreq.evidence.report import EvidenceReport, evidence_report, write_csv, write_html
from accessreq.models import (
    AccessRequest,
    Campaign,
    Operation,
    ProvisioningTask,
    ReviewItem,
)
from audit import export as ledger_export
from audit.models import AuditEvent
from audit.services import record

FORMATS = ("html", "csv", "pdf")
CONTENT_TYPES = {
    "html": "text/html; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "pdf": "application/pdf",
}
CAMPAIGN_README = "CAMPAIGN-EVIDENCE.txt"
WRITERS = {"csv": write_csv, "html": write_html, "pdf": write_pdf}


def campaign_events(campaign: Campaign) -> QuerySet[AuditEvent]:
    """The ledger events of a campaign: its own, its items' decisions, the revocations of its
    grants and the connectors' confirmations that the access was removed."""
    items = ReviewItem.objects.filter(campaign=campaign)
    grants = items.values("grant")
    tasks = ProvisioningTask.objects.filter(grant__in=grants, operation=Operation.DEPROVISION)
    requests = AccessRequest.objects.filter(grant__in=grants)

    def ids(queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.annotate(key=Cast("pk", CharField())).values("key")

    return AuditEvent.objects.filter(
        Q(target_type="accessreq.campaign", target_id=str(campaign.pk))
        | Q(target_type="accessreq.reviewitem", target_id__in=ids(items))
        | Q(target_type="accessreq.provisioningtask", target_id__in=ids(tasks))
        | Q(
            target_type="accessreq.accessrequest",
            action="grant.revoked",
            target_id__in=ids(requests),
        )
    )


def _campaign_readme(report_name: str, campaign: Campaign) -> bytes:
    return f"""Gatehouse access review evidence: {campaign.template.name} {campaign.period}

This ZIP is a Gatehouse evidence bundle (see README.txt) with one more file:

  {report_name}
      the campaign's evidence report. Its SHA-256 is listed in manifest.json, which is signed
      (manifest.sig, Ed25519) by the key named there as signing_key_id.

events.jsonl holds the campaign's ledger events: launch, every review decision with its
second-factor context, reassignments, escalations, the deadline action, revocations of the
reviewed access and the connectors' confirmations that it was removed. They are checked against
the signed checkpoint like any exported event.

To verify offline (Python 3.9+ and the "cryptography" package):

    python verify_bundle.py THIS.zip --trusted-keys keys.json

where keys.json is Gatehouse's /audit/keys page saved as a file. The verifier checks the
manifest's signature, the SHA-256 of every file (the report included), the checkpoint and every
event. Changing one byte of the report makes it fail.
""".encode()


@dataclass(frozen=True)
class SignedBundle:
    manifest_sha256: str
    signing_key_id: str
    event_count: int
    tree_size: int


def write_signed_bundle(
    *,
    report: EvidenceReport,
    report_name: str,
    report_file: IO[bytes],
    fileobj: IO[bytes],
    actor: Any,
) -> SignedBundle:
    """A ledger evidence bundle of the campaign's events with the report added to its signed
    manifest: ``audit/verify_bundle.py`` checks it unchanged."""
    campaign = report.campaign
    result = ledger_export.write_bundle_with(
        campaign_events(campaign),
        fileobj,
        actor=actor,
        filters={"campaign_id": campaign.pk, "campaign": report.title},
        files=[
            (report_name, report_file),
            (CAMPAIGN_README, io.BytesIO(_campaign_readme(report_name, campaign))),
        ],
        manifest_extra={
            "campaign": {
                "id": campaign.pk,
                "name": report.title,
                "state": campaign.state,
                "report": report_name,
                "items": report.item_count,
            }
        },
    )
    return SignedBundle(
        manifest_sha256=result.manifest_sha256,
        signing_key_id=result.signing_key_id,
        event_count=result.bundle.event_count,
        tree_size=result.bundle.tree_size,
    )


# --- Export (the audited entry points) -----------------------------------------------------------


@dataclass(frozen=True)
class EvidenceFile:
    """A written report or signed bundle, ready to send, and the audit event of its export."""

    handle: IO[bytes]
    filename: str
    content_type: str
    sha256: str
    size: int
    event: AuditEvent


def report_filename(campaign: Campaign, fmt: str) -> str:
    from django.utils.text import slugify

    return f"campaign-{campaign.pk}-{slugify(campaign.template.name)}-{campaign.period}.{fmt}"


def _campaign_for(actor: Any, campaign_id: int) -> Campaign:
    campaign = (
        campaigns_visible_to(actor)
        .select_related("template", "launched_by")
        .filter(pk=campaign_id)
        .first()
    )
    if campaign is None:
        raise NotAllowed("No such campaign.")
    return campaign


def evidence_view(
    *, campaign_id: int, actor: Any, http: HttpRequest | None = None
) -> EvidenceReport:
    """The report for reading in the browser; opening it is recorded like a download."""
    campaign = _campaign_for(actor, campaign_id)
    report = evidence_report(campaign, actor=actor)
    with transaction.atomic():
        record(
            actor=actor,
            action="campaign.evidence_exported",
            target=campaign,
            data={
                "campaign_id": campaign.pk,
                "format": "html",
                "signed": False,
                "delivery": "page",
                "items": report.item_count,
            },
            request=http,
        )
    return report


def evidence_export(
    *, campaign_id: int, fmt: str, signed: bool, actor: Any, http: HttpRequest | None = None
) -> EvidenceFile:
    """Write the campaign's evidence report as ``fmt`` (in a signed bundle when ``signed``) to a
    temporary file and record ``campaign.evidence_exported`` with the file's SHA-256.

    Like the ledger export, the event is written after the file, in its own short transaction.
    Raises NotAllowed for people who may not read campaigns, ExportError when the ledger can't
    be proven (a signed bundle is refused rather than handed out unverifiable).
    """
    if fmt not in FORMATS:
        raise NotAllowed("No such format.")
    campaign = _campaign_for(actor, campaign_id)
    report = evidence_report(campaign, actor=actor)
    report_name = report_filename(campaign, fmt)
    report_file = tempfile.TemporaryFile(prefix="gatehouse-campaign-")  # noqa: SIM115
    handles = [report_file]
    try:
        WRITERS[fmt](report, report_file)
        report_sha256, report_size = ledger_export.file_digest(report_file)
        data: dict[str, Any] = {
            "campaign_id": campaign.pk,
            "format": fmt,
            "signed": signed,
            "items": report.item_count,
            "report": report_name,
            "report_sha256": report_sha256,
        }
        out, filename, content_type = report_file, report_name, CONTENT_TYPES[fmt]
        if signed:
            bundle = tempfile.TemporaryFile(prefix="gatehouse-campaign-bundle-")  # noqa: SIM115
            handles.append(bundle)
            info = write_signed_bundle(
                report=report,
                report_name=report_name,
                report_file=report_file,
                fileobj=bundle,
                actor=actor,
            )
            report_file.close()
            out, content_type = bundle, "application/zip"
            filename = report_name.rsplit(".", 1)[0] + f"-{fmt}-signed.zip"
            data.update(
                manifest_sha256=info.manifest_sha256,
                signing_key_id=info.signing_key_id,
                ledger_events=info.event_count,
                tree_size=info.tree_size,
            )
        sha256, size = ledger_export.file_digest(out)
        data.update(filename=filename, sha256=sha256, size=size)
        with transaction.atomic():
            event = record(
                actor=actor,
                action="campaign.evidence_exported",
                target=campaign,
                data=data,
                request=http,
            )
    except BaseException:
        for handle in handles:
            handle.close()
        raise
    return EvidenceFile(
        handle=out,
        filename=filename,
        content_type=content_type,
        sha256=sha256,
        size=size,
        event=event,
    )
