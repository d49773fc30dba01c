"""Report exports: each one a signed evidence bundle (the ledger's format and key) holding the
report as CSV, XLSX or PDF, and recorded in the ledger.

Small exports are built while the browser waits; above ``REPORT_EXPORT_SYNC_ROWS`` rows a
``ReportExport`` is queued (with its audit event, in one transaction) and a Celery worker builds
it with progress, keeps it ``REPORT_EXPORT_KEEP_HOURS`` and the sweep deletes it after. A worker
that dies mid-build leaves a stale heartbeat; the sweep queues the export again.
"""

from __future__ import annotations

import io
import secrets
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, QueryDict
from django.utils.text import slugify

from accessreq.errors import NotAllowed, WorkflowError
from accessreq.models import ExportState, ReportExport
from accessreq.reports.base import Report, report_class
from accessreq.reports.writers import FORMATS, WRITERS
from accessreq.services.common import now
from audit import export as ledger_export
from audit.models import AuditEvent
from audit.services import record
from portal.roles import can_read_audit

README = "REPORT.txt"
# A running export whose heartbeat is older than this lost its worker.
STALE_AFTER = timedelta(minutes=5)
MAX_ATTEMPTS = 3
# Exports one person may have queued or being built at once.
MAX_IN_PROGRESS = 3
_HEARTBEAT_EVERY = timedelta(seconds=2)


@dataclass(frozen=True)
class ExportFile:
    handle: IO[bytes]
    filename: str
    sha256: str
    size: int
    event: AuditEvent


def build_report(slug: str, query: dict[str, Any], *, at: datetime) -> Report:
    """The report ``slug`` for the form input ``query`` as of ``at``; ``NotAllowed`` names
    what is wrong with the input."""
    cls = report_class(slug)
    if cls is None:
        raise NotAllowed("No such report.")
    data = QueryDict(mutable=True)
    for key, value in query.items():
        data.setlist(key, value if isinstance(value, list) else [value])
    form = cls.form_class(data, at=at)  # type: ignore[call-arg]
    if not form.is_valid():
        problems = "; ".join(
            f"{name}: {' '.join(str(e) for e in errors)}"
            if name != "__all__"
            else " ".join(str(e) for e in errors)
            for name, errors in form.errors.items()
        )
        raise NotAllowed(f"The report's parameters are not valid: {problems}")
    return cls(form.cleaned_data, at=at)


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _names(report: Report, fmt: str, at: datetime) -> tuple[str, str]:
    base = f"gatehouse-{slugify(report.slug)}-{_stamp(at)}"
    return f"{base}.{fmt}", f"{base}-{fmt}-signed.zip"


def _readme(report: Report, report_name: str, head: list[tuple[str, str]], rows: int) -> bytes:
    lines = "\n".join(f"  {label}: {value}" for label, value in head)
    return f"""Gatehouse audit report: {report.title}

{report.summary}

{lines}
  Rows: {rows}

This ZIP is a Gatehouse evidence bundle (see README.txt) with the report added:

  {report_name}
      the report. Its SHA-256 is listed in manifest.json, signed (manifest.sig, Ed25519) by the
      ledger's key named there as signing_key_id; the report's parameters are in the manifest
      under "report".

events.jsonl holds the ledger events the report is made of, if its rows are events (failed and
refused attempts), and none otherwise; the checkpoint shows the ledger's size and root when the
report was made.

To verify offline (Python 3.9+ and the "cryptography" package):

    python verify_bundle.py THIS.zip --trusted-keys keys.json

where keys.json is Gatehouse's /audit/keys page saved as a file. Changing one byte of the report
makes it fail.
""".encode()


def write_export(
    report: Report,
    fmt: str,
    fileobj: IO[bytes],
    *,
    actor: Any,
    progress: Any = None,
) -> dict[str, Any]:
    """Write the signed bundle of ``report`` as ``fmt`` to ``fileobj``; return the facts the
    audit event records. Nothing is recorded here."""
    from accessreq.reports.writers import head

    made_by = f"{actor} <{getattr(actor, 'email', '')}>"
    report_name, filename = _names(report, fmt, report.at)
    with tempfile.TemporaryFile(prefix="gatehouse-report-") as report_file:
        try:
            rows = WRITERS[fmt](
                report, report_file, made_by=made_by, made_at=report.at, progress=progress
            )
        except ValueError as exc:  # a PDF too long to draw
            raise NotAllowed(str(exc)) from exc
        facts = head(report, made_by=made_by, made_at=report.at)
        parameters = report.parameters()
        result = ledger_export.write_bundle_with(
            report.evidence_events(),
            fileobj,
            actor=actor,
            filters={"report": report.slug, **parameters},
            files=[
                (report_name, report_file),
                (README, io.BytesIO(_readme(report, report_name, facts, rows))),
            ],
            manifest_extra={
                "report": {
                    "slug": report.slug,
                    "title": report.title,
                    "file": report_name,
                    "format": fmt,
                    "rows": rows,
                    "parameters": parameters,
                    "as_of": report.at.isoformat(),
                }
            },
        )
    return {
        "report": report.slug,
        "title": report.title,
        "format": fmt,
        "parameters": parameters,
        "rows": rows,
        "filename": filename,
        "manifest_sha256": result.manifest_sha256,
        "signing_key_id": result.signing_key_id,
        "ledger_events": result.bundle.event_count,
        "tree_size": result.bundle.tree_size,
    }


def _check(actor: Any, fmt: str) -> None:
    if not can_read_audit(actor):
        raise NotAllowed("No such report.")
    if fmt not in FORMATS:
        raise NotAllowed(f"No such format: choose one of {', '.join(FORMATS)}.")


def report_export(
    *, slug: str, fmt: str, query: dict[str, Any], actor: Any, http: HttpRequest | None = None
) -> ExportFile | ReportExport:
    """Export the report now (a file to send) or, when it has more rows than the threshold,
    queue it for a worker (the queued export)."""
    _check(actor, fmt)
    at = now()
    report = build_report(slug, query, at=at)
    rows = report.count()
    if rows > settings.REPORT_EXPORT_SYNC_ROWS:
        return _queue(report, fmt, query, rows=rows, actor=actor, http=http, at=at)
    handle = tempfile.TemporaryFile(prefix="gatehouse-report-bundle-")  # noqa: SIM115
    try:
        return report_export_to(report, fmt, handle, actor=actor, delivery="download", http=http)
    except BaseException:
        handle.close()
        raise


def report_export_to(
    report: Report,
    fmt: str,
    handle: IO[bytes],
    *,
    actor: Any,
    delivery: str,
    http: HttpRequest | None = None,
) -> ExportFile:
    """Write the signed export of ``report`` to ``handle`` (readable, seekable) and record it.
    The event comes after the file, in its own short transaction, as for every evidence export:
    the ledger's writer lock is never held through a long write."""
    data = write_export(report, fmt, handle, actor=actor)
    sha256, size = ledger_export.file_digest(handle)
    data.update(sha256=sha256, size=size, delivery=delivery)
    with transaction.atomic():
        event = record(actor=actor, action="report.exported", data=data, request=http)
    return ExportFile(
        handle=handle, filename=data["filename"], sha256=sha256, size=size, event=event
    )


def _queue(
    report: Report,
    fmt: str,
    query: dict[str, Any],
    *,
    rows: int,
    actor: Any,
    http: HttpRequest | None,
    at: datetime,
) -> ReportExport:
    from accessreq.tasks import report_export_build

    in_progress = exports_of(actor).filter(state__in=(ExportState.QUEUED, ExportState.RUNNING))
    if in_progress.count() >= MAX_IN_PROGRESS:
        raise WorkflowError(
            f"You already have {MAX_IN_PROGRESS} exports being built; wait for one to finish."
        )
    with transaction.atomic():
        export = ReportExport.objects.create(
            requested_by=actor,
            report=report.slug,
            title=report.title,
            format=fmt,
            query=query,
            parameters=report.parameters(),
            rows_total=rows,
            created_at=at,
        )
        record(
            actor=actor,
            action="report.export_queued",
            target=export,
            data={
                "report": report.slug,
                "format": fmt,
                "parameters": export.parameters,
                "rows": rows,
            },
            request=http,
        )
        transaction.on_commit(lambda: report_export_build.delay(export.pk))
    return export


def export_folder() -> Path:
    folder = Path(settings.REPORT_EXPORT_DIR)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder


def report_export_build(export_id: int, *, actor: Any) -> bool:
    """Build a queued export (the worker's side). False when it is not queued any more."""
    with transaction.atomic():
        export = (
            ReportExport.objects.select_for_update()
            .select_related("requested_by")
            .filter(pk=export_id, state=ExportState.QUEUED)
            .first()
        )
        if export is None:
            return False
        clock = now()
        export.state = ExportState.RUNNING
        export.started_at = export.heartbeat_at = clock
        export.attempts += 1
        export.rows_done = 0
        export.save(update_fields=["state", "started_at", "heartbeat_at", "attempts", "rows_done"])
    person = export.requested_by
    last_beat = [clock]

    def progress(done: int) -> None:
        beat = now()
        if beat - last_beat[0] >= _HEARTBEAT_EVERY:
            last_beat[0] = beat
            ReportExport.objects.filter(pk=export.pk, state=ExportState.RUNNING).update(
                rows_done=done, heartbeat_at=beat
            )

    name = f"{export.pk}-{secrets.token_hex(8)}.zip"
    path = export_folder() / name
    try:
        report = build_report(export.report, export.query, at=export.created_at)
        with open(path, "wb") as out:
            data = write_export(report, export.format, out, actor=person, progress=progress)
        with open(path, "rb") as written:
            sha256, size = ledger_export.file_digest(written)
    except (NotAllowed, ledger_export.ExportError) as exc:
        path.unlink(missing_ok=True)
        _fail(export, str(exc), actor=actor)
        return True
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    data.update(sha256=sha256, size=size, delivery="background", export_id=export.pk)
    with transaction.atomic():
        current = ReportExport.objects.select_for_update().get(pk=export.pk)
        if current.state != ExportState.RUNNING or current.attempts != export.attempts:
            path.unlink(missing_ok=True)  # the sweep gave it to another worker meanwhile
            return False
        clock = now()
        current.state = ExportState.READY
        current.rows_done = data["rows"]
        current.finished_at = current.heartbeat_at = clock
        current.expires_at = clock + timedelta(hours=settings.REPORT_EXPORT_KEEP_HOURS)
        current.filename, current.path = data["filename"], name
        current.sha256, current.size = sha256, size
        current.save()
        record(actor=person, action="report.exported", target=current, data=data)
    return True


def _fail(export: ReportExport, reason: str, *, actor: Any) -> None:
    with transaction.atomic():
        updated = ReportExport.objects.filter(pk=export.pk, state=ExportState.RUNNING).update(
            state=ExportState.FAILED, error=reason, finished_at=now()
        )
        if updated:
            record(
                actor=actor,
                action="report.export_failed",
                target=export,
                data={"report": export.report, "format": export.format, "reason": reason},
            )


def exports_of(actor: Any) -> QuerySet[ReportExport]:
    """The exports a person may see: their own."""
    return ReportExport.objects.filter(requested_by=actor)


def report_view(report: Report, *, actor: Any, http: HttpRequest | None = None) -> AuditEvent:
    """Opening a report in the browser is recorded like an export, with its parameters."""
    with transaction.atomic():
        return record(
            actor=actor,
            action="report.viewed",
            data={"report": report.slug, "parameters": report.parameters()},
            request=http,
        )


def report_export_download(
    *, export_id: int, actor: Any, http: HttpRequest | None = None
) -> ExportFile:
    """Open a ready export of ``actor``'s for sending and record the download."""
    export = exports_of(actor).filter(pk=export_id).first() if can_read_audit(actor) else None
    if export is None:
        raise NotAllowed("No such export.")
    if export.state != ExportState.READY:
        raise WorkflowError(f"This export is {export.get_state_display().lower()}.")
    try:
        handle = open(export_folder() / export.path, "rb")  # noqa: SIM115
    except FileNotFoundError as exc:
        raise WorkflowError("The export's file is gone; export the report again.") from exc
    try:
        with transaction.atomic():
            event = record(
                actor=actor,
                action="report.downloaded",
                target=export,
                data={
                    "report": export.report,
                    "filename": export.filename,
                    "sha256": export.sha256,
                },
                request=http,
            )
    except BaseException:
        handle.close()
        raise
    return ExportFile(
        handle=handle, filename=export.filename, sha256=export.sha256, size=export.size, event=event
    )


def report_exports_sweep(*, actor: Any) -> dict[str, int]:
    """Delete exports past their keeping time; queue again those whose worker died (or fail
    them after ``MAX_ATTEMPTS``); queue again those whose task never ran."""
    from accessreq.tasks import report_export_build

    clock = now()
    counts = {"deleted": 0, "requeued": 0, "failed": 0}
    for export in ReportExport.objects.filter(state=ExportState.READY, expires_at__lte=clock):
        with transaction.atomic():
            if not ReportExport.objects.filter(pk=export.pk, state=ExportState.READY).update(
                state=ExportState.EXPIRED, path=""
            ):
                continue
            record(
                actor=actor,
                action="report.export_deleted",
                target=export,
                data={"report": export.report, "filename": export.filename},
            )
        (export_folder() / export.path).unlink(missing_ok=True)
        counts["deleted"] += 1
    # Read before the stale ones below are queued again, so none is sent twice.
    forgotten = list(
        ReportExport.objects.filter(
            state=ExportState.QUEUED, created_at__lt=clock - timedelta(minutes=2)
        ).values_list("pk", flat=True)
    )
    stale = ReportExport.objects.filter(
        state=ExportState.RUNNING, heartbeat_at__lt=clock - STALE_AFTER
    )
    for export in stale:
        if export.attempts >= MAX_ATTEMPTS:
            _fail(export, f"The build stopped {export.attempts} times; export again.", actor=actor)
            counts["failed"] += 1
            continue
        with transaction.atomic():
            if not ReportExport.objects.filter(pk=export.pk, state=ExportState.RUNNING).update(
                state=ExportState.QUEUED
            ):
                continue
            record(
                actor=actor,
                action="report.export_requeued",
                target=export,
                data={"report": export.report, "attempts": export.attempts},
            )
            transaction.on_commit(partial(report_export_build.delay, export.pk))
        counts["requeued"] += 1
    for pk in forgotten:
        report_export_build.delay(pk)
        counts["requeued"] += 1
    return counts
