"""Evidence bundles: audit events with everything needed to check them offline.

A bundle (format ``gatehouse-evidence-v1``) is a ZIP of the chosen events as canonical JSON Lines
and as CSV, the leaf hashes of the whole ledger up to a signed checkpoint, that checkpoint, the
public keys, and a signed manifest of SHA-256 digests. ``audit/verify_bundle.py`` checks one
without Gatehouse and is the reference for the format: file names and CSV rows come from it.

Everything is streamed in sequence-ordered chunks into the ZIP (and the CSV through a temporary
file), so memory stays flat however many events are exported.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import tempfile
import zipfile
from collections import namedtuple
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from audit import ledger, merkle, signing
from audit import verify_bundle as bundle_format
from audit.canonical import FORMAT as EVENT_FORMAT
from audit.canonical import PAYLOAD_FIELDS, canonical_bytes, event_payload, format_time
from audit.checkpoints import checkpoint_sign
from audit.models import AuditEvent, Checkpoint, SigningKey
from audit.services import record

BUNDLE_FORMAT = bundle_format.FORMAT
# Rows per query. Keyset pages (sequence > last) keep each query cheap and need neither a
# server-side cursor nor a long transaction.
EVENT_CHUNK = 2000
LEAF_CHUNK = 20000
_COPY_BLOCK = 1 << 20
# Rows as light tuples with attribute access (what ``event_payload`` reads): building model
# instances would cost more than the rest of the export.
_Row = namedtuple("_Row", PAYLOAD_FIELDS)  # type: ignore[misc]
_FILE_MODE = 0o644 << 16  # rw-r--r-- when unzipped

_CHECKPOINT_MESSAGE_FORMAT = (
    "Ed25519 signature (hex) over the UTF-8 bytes of the JSON object with keys format, "
    "tree_size, root_hash, signed_at and key_id, keys sorted, separators ',' and ':', no spaces; "
    '"message" holds those bytes.'
)


class ExportError(Exception):
    """The bundle cannot be built; the message says why, fit to show an auditor."""


@dataclass(frozen=True)
class BundleInfo:
    """What a written bundle holds and which checkpoint covers it."""

    event_count: int
    tree_size: int
    root_hash: str
    checkpoint_key_id: str
    manifest_sha256: str
    created_at: datetime


@dataclass(frozen=True)
class ExportResult:
    """A written bundle, its SHA-256 and download name, and the ``audit.exported`` event."""

    bundle: BundleInfo
    bundle_sha256: str
    filename: str
    event: AuditEvent


def events_for_export(
    *, action: str = "", since: datetime | None = None, until: datetime | None = None
) -> QuerySet[AuditEvent]:
    """Events with ``since <= time < until`` and the action ``action``, or any action in the
    family ``action`` when it ends with a dot (``auth.`` is every ``auth.*`` code).

    The action rule is the auditor search's. A stand-in for the search selector: any unsliced
    ``AuditEvent`` queryset can be given to ``write_bundle`` instead.
    """
    events = AuditEvent.objects.all()
    if action.endswith("."):
        events = events.filter(action__startswith=action)
    elif action:
        events = events.filter(action=action)
    if since is not None:
        events = events.filter(occurred_at__gte=since)
    if until is not None:
        events = events.filter(occurred_at__lt=until)
    return events


def filters_as_json(filters: dict[str, Any]) -> dict[str, Any]:
    """The filters that were set, as JSON values (times in the ledger's format)."""
    result: dict[str, Any] = {}
    for name, value in sorted(filters.items()):
        if value in (None, "", [], ()):
            continue
        result[name] = format_time(value) if isinstance(value, datetime) else value
    return json.loads(json.dumps(result, default=str))


class _Member:
    """One file of the bundle being written into the ZIP, hashed on the way."""

    def __init__(self, handle: IO[bytes]) -> None:
        self._handle = handle
        self._digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self._handle.write(data)
        self._digest.update(data)
        self.size += len(data)

    def entry(self) -> dict[str, Any]:
        return {"sha256": self._digest.hexdigest(), "size": self.size}


class _BundleWriter:
    """The open ZIP, the time stamped on its entries, and the manifest's table of files."""

    def __init__(self, archive: zipfile.ZipFile, created_at: datetime) -> None:
        self.archive = archive
        utc = created_at.astimezone(UTC)
        self.date_time = (utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second)
        self.files: dict[str, dict[str, Any]] = {}

    @contextmanager
    def member(self, name: str, *, compress: bool = True, large: bool = False) -> Iterator[_Member]:
        info = zipfile.ZipInfo(name, date_time=self.date_time)
        info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        info.external_attr = _FILE_MODE
        with self.archive.open(info, "w", force_zip64=large) as handle:
            member = _Member(handle)
            yield member
        self.files[name] = member.entry()

    def small(self, name: str, data: bytes, *, listed: bool = True) -> None:
        with self.member(name) as member:
            member.write(data)
        if not listed:
            del self.files[name]


def _in_sequence_order(events: QuerySet[AuditEvent], chunk: int) -> Iterator[list[Any]]:
    """The events as rows with the canonical fields, in pages of ``chunk`` by sequence."""
    rows = events.order_by("sequence").values_list(*PAYLOAD_FIELDS)
    last = 0
    while True:
        batch: list[Any] = [_Row._make(row) for row in rows.filter(sequence__gt=last)[:chunk]]
        if batch:
            yield batch
        if len(batch) < chunk:
            return
        last = batch[-1].sequence


def _write_events(
    writer: _BundleWriter, events: QuerySet[AuditEvent], csv_spool: IO[bytes]
) -> tuple[int, int | None, int | None]:
    """events.jsonl into the ZIP and events.csv into ``csv_spool``, in one pass over the rows."""
    count, first, last = 0, None, None
    text = io.StringIO()
    rows = csv.writer(text)
    csv_spool.write("\ufeff".encode())  # a BOM, so spreadsheet programs read UTF-8
    rows.writerow(bundle_format.CSV_HEADER)
    with writer.member(bundle_format.EVENTS_JSONL, large=True) as jsonl:
        for batch in _in_sequence_order(events, EVENT_CHUNK):
            lines = []
            for event in batch:
                payload = event_payload(event)
                lines.append(canonical_bytes(payload))
                rows.writerow(bundle_format.csv_row(payload))
            lines.append(b"")
            jsonl.write(b"\n".join(lines))
            csv_spool.write(text.getvalue().encode("utf-8"))
            text.seek(0)
            text.truncate()
            count += len(batch)
            first = batch[0].sequence if first is None else first
            last = batch[-1].sequence
    csv_spool.write(text.getvalue().encode("utf-8"))
    return count, first, last


def _copy_csv(writer: _BundleWriter, csv_spool: IO[bytes]) -> None:
    csv_spool.seek(0)
    with writer.member(bundle_format.EVENTS_CSV, large=True) as member:
        while block := csv_spool.read(_COPY_BLOCK):
            member.write(block)


def _write_leaves(writer: _BundleWriter, checkpoint: Checkpoint) -> None:
    """leaves.bin: the raw leaf hashes of events 1..tree_size, checked against the signed root."""
    rows = AuditEvent.objects.filter(sequence__lte=checkpoint.tree_size).order_by("sequence")
    tree = merkle.StreamingRoot()
    last = 0
    with writer.member(bundle_format.LEAVES, compress=False, large=True) as member:
        while True:
            batch = list(
                rows.filter(sequence__gt=last).values_list("sequence", "leaf_hash")[:LEAF_CHUNK]
            )
            leaves = []
            for sequence, value in batch:
                if sequence != last + 1:
                    raise ExportError(
                        f"The ledger has a gap before event {sequence}; run "
                        "`manage.py audit verify` before exporting."
                    )
                try:
                    leaf = bytes.fromhex(value)
                except ValueError:
                    raise ExportError(
                        f"Event {sequence} has a malformed leaf hash; run "
                        "`manage.py audit verify` before exporting."
                    ) from None
                tree.add(leaf)
                leaves.append(leaf)
                last = sequence
            member.write(b"".join(leaves))
            if len(batch) < LEAF_CHUNK:
                break
    # A bundle that cannot verify is no evidence: refuse it here rather than hand it out.
    if tree.size != checkpoint.tree_size or tree.root().hex() != checkpoint.root_hash:
        raise ExportError(
            f"The ledger no longer matches its signed checkpoint of {checkpoint.tree_size} "
            "events; run `manage.py audit verify` before exporting."
        )


def _checkpoint_json(checkpoint: Checkpoint) -> bytes:
    document = {
        "format": ledger.CHECKPOINT_FORMAT,
        "tree_size": checkpoint.tree_size,
        "root_hash": checkpoint.root_hash,
        "signed_at": format_time(checkpoint.signed_at),
        "key_id": checkpoint.key_id,
        "signature": checkpoint.signature,
        "message": ledger.checkpoint_message(checkpoint).decode(),
        "message_format": _CHECKPOINT_MESSAGE_FORMAT,
    }
    return _json_file(document)


def _public_keys_json(current_id: str, current_hex: str) -> bytes:
    keys = [
        {
            "key_id": key.key_id,
            "algorithm": "Ed25519",
            "public_key": key.public_key,
            "created_at": format_time(key.created_at),
            "retired_at": format_time(key.retired_at) if key.retired_at else None,
        }
        for key in SigningKey.objects.order_by("created_at")
    ]
    if all(key["key_id"] != current_id for key in keys):
        keys.append(
            {
                "key_id": current_id,
                "algorithm": "Ed25519",
                "public_key": current_hex,
                "created_at": None,
                "retired_at": None,
            }
        )
    return _json_file({"current_key_id": current_id, "keys": keys})


def _json_file(document: dict[str, Any]) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _readme(checkpoint: Checkpoint, manifest_key_id: str, created_at: datetime) -> bytes:
    text = f"""Gatehouse evidence bundle ({BUNDLE_FORMAT})
Exported {format_time(created_at)} from deployment "{settings.DEPLOYMENT_NAME}".

HOW TO VERIFY
  You need Python 3.9 or newer and the "cryptography" package (pip install cryptography).
  Unzip this bundle, or take verify_bundle.py out of it, then run:

      python verify_bundle.py bundle.zip

  It prints one line starting with "OK" and exits 0 when everything holds, or lists every
  problem (naming the file at fault) and exits 1.

  The public keys come from the bundle itself. To be sure they are Gatehouse's, compare the key
  ids below with the keys your Gatehouse publishes at /audit/keys, or save that page as
  keys.json and run:

      python verify_bundle.py bundle.zip --trusted-keys keys.json

  Manifest signed by key {manifest_key_id}; checkpoint signed by key {checkpoint.key_id}.

WHAT IS CHECKED
  1. manifest.sig is an Ed25519 signature of manifest.json's exact bytes.
  2. Every file's SHA-256 matches manifest.json.
  3. checkpoint.json is signed: the signed tree head of the first {checkpoint.tree_size} events
     of the ledger, root {checkpoint.root_hash}.
  4. leaves.bin (32 bytes per event, events 1 to {checkpoint.tree_size}) hashes to that root as
     an RFC 6962 Merkle tree.
  5. Each line of events.jsonl hashes, as SHA-256(0x00 || line), to the leaf at index seq-1,
     and its "prev" is the leaf before it: the events are exactly what the ledger signed.
  6. events.csv has the same events as events.jsonl.

FILES
  events.jsonl      the exported events, one canonical {EVENT_FORMAT} JSON object per line
  events.csv        the same events for spreadsheets (cells that a spreadsheet would run as a
                    formula start with a ' so they show as text)
  leaves.bin        leaf hashes of every event up to the checkpoint, not only the exported ones
  checkpoint.json   the signed checkpoint and the exact bytes its signature covers
  public_keys.json  Ed25519 public keys (hex); key id = first 16 hex digits of SHA-256(key)
  manifest.json     SHA-256 of every file, the filters, who exported the bundle and when
  manifest.sig      Ed25519 signature (64 raw bytes) of manifest.json
  verify_bundle.py  the verifier

Events written after the checkpoint are not in this bundle; export again for newer events.
"""
    return text.encode()


def _latest_checkpoint() -> Checkpoint | None:
    return Checkpoint.objects.order_by("-tree_size", "-id").first()


def write_bundle(
    events: QuerySet[AuditEvent],
    fileobj: IO[bytes],
    *,
    actor: Any,
    filters: dict[str, Any],
) -> BundleInfo:
    """Write an evidence bundle of ``events`` (an unsliced queryset) to ``fileobj``.

    Signs a checkpoint first so that the newest events are covered (``actor`` signs it), then
    exports the matching events up to that checkpoint. ``filters`` are recorded in the manifest.
    Those events are committed and immutable, so no snapshot or lock is held while writing.
    """
    checkpoint = checkpoint_sign(actor=actor) or _latest_checkpoint()
    if checkpoint is None:
        raise ExportError("The ledger is empty: there is nothing to export yet.")
    key = signing.signing_key()
    key_id = signing.key_id_of(key.public_key())
    key_hex = signing.public_bytes(key.public_key()).hex()
    created_at = timezone.now()

    with (
        zipfile.ZipFile(fileobj, "w", allowZip64=True) as archive,
        tempfile.TemporaryFile(prefix="gatehouse-export-csv-") as csv_spool,
    ):
        writer = _BundleWriter(archive, created_at)
        writer.small(bundle_format.README, _readme(checkpoint, key_id, created_at))
        writer.small(bundle_format.VERIFIER, Path(bundle_format.__file__).read_bytes())
        count, first, last = _write_events(
            writer, events.filter(sequence__lte=checkpoint.tree_size), csv_spool
        )
        _copy_csv(writer, csv_spool)
        _write_leaves(writer, checkpoint)
        writer.small(bundle_format.CHECKPOINT, _checkpoint_json(checkpoint))
        writer.small(bundle_format.PUBLIC_KEYS, _public_keys_json(key_id, key_hex))
        manifest = _json_file(
            {
                "format": BUNDLE_FORMAT,
                "event_format": EVENT_FORMAT,
                "created_at": format_time(created_at),
                "exported_by": {
                    "id": getattr(actor, "pk", None),
                    "name": str(actor),
                    "email": getattr(actor, "email", ""),
                },
                "deployment": settings.DEPLOYMENT_NAME,
                "code_version": settings.CODE_VERSION,
                "filters": filters_as_json(filters),
                "event_count": count,
                "first_sequence": first,
                "last_sequence": last,
                "checkpoint": {
                    "tree_size": checkpoint.tree_size,
                    "root_hash": checkpoint.root_hash,
                    "signed_at": format_time(checkpoint.signed_at),
                    "key_id": checkpoint.key_id,
                },
                "signing_key_id": key_id,
                "files": dict(sorted(writer.files.items())),
            }
        )
        writer.small(bundle_format.MANIFEST, manifest, listed=False)
        writer.small(bundle_format.MANIFEST_SIG, key.sign(manifest), listed=False)

    return BundleInfo(
        event_count=count,
        tree_size=checkpoint.tree_size,
        root_hash=checkpoint.root_hash,
        checkpoint_key_id=checkpoint.key_id,
        manifest_sha256=hashlib.sha256(manifest).hexdigest(),
        created_at=created_at,
    )


@dataclass(frozen=True)
class ExtendedBundle:
    bundle: BundleInfo
    manifest_sha256: str
    signing_key_id: str


def write_bundle_with(
    events: QuerySet[AuditEvent],
    fileobj: IO[bytes],
    *,
    actor: Any,
    filters: dict[str, Any],
    files: list[tuple[str, IO[bytes]]],
    manifest_extra: dict[str, Any],
) -> ExtendedBundle:
    """An evidence bundle of ``events`` with more ``files`` (name, readable binary file) listed,
    with their SHA-256, in the same signed manifest, and ``manifest_extra`` merged into it: the
    offline verifier checks them with everything else, unchanged. Campaign evidence and the
    auditor reports are delivered this way; there is one bundle format and one signer."""
    with tempfile.TemporaryFile(prefix="gatehouse-bundle-base-") as base:
        info = write_bundle(events, base, actor=actor, filters=filters)
        base.seek(0)
        with (
            zipfile.ZipFile(base) as source,
            zipfile.ZipFile(fileobj, "w", allowZip64=True) as target,
        ):
            manifest = json.loads(source.read(bundle_format.MANIFEST))
            date_time = source.getinfo(bundle_format.MANIFEST).date_time

            def member(name: str, compress: bool = True) -> zipfile.ZipInfo:
                entry = zipfile.ZipInfo(name, date_time=date_time)
                entry.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
                entry.external_attr = _FILE_MODE
                return entry

            for entry in source.infolist():
                if entry.filename in (bundle_format.MANIFEST, bundle_format.MANIFEST_SIG):
                    continue
                copy = member(entry.filename, entry.compress_type != zipfile.ZIP_STORED)
                with source.open(entry) as reader, target.open(copy, "w", force_zip64=True) as out:
                    while block := reader.read(_COPY_BLOCK):
                        out.write(block)

            for name, reader in files:
                if name in manifest["files"] or name in (
                    bundle_format.MANIFEST,
                    bundle_format.MANIFEST_SIG,
                ):
                    raise ExportError(f"{name} is a name the bundle format reserves.")
                digest, size = hashlib.sha256(), 0
                reader.seek(0)
                with target.open(member(name), "w", force_zip64=True) as out:
                    while block := reader.read(_COPY_BLOCK):
                        out.write(block)
                        digest.update(block)
                        size += len(block)
                manifest["files"][name] = {"sha256": digest.hexdigest(), "size": size}
            manifest["files"] = dict(sorted(manifest["files"].items()))
            manifest.update(manifest_extra)
            raw = _json_file(manifest)
            key = signing.signing_key()
            key_id = signing.key_id_of(key.public_key())
            if key_id != manifest.get("signing_key_id"):
                raise ExportError(
                    "The signing key changed while the bundle was written; export again."
                )
            target.writestr(member(bundle_format.MANIFEST), raw)
            target.writestr(member(bundle_format.MANIFEST_SIG), key.sign(raw))
    return ExtendedBundle(
        bundle=info, manifest_sha256=hashlib.sha256(raw).hexdigest(), signing_key_id=key_id
    )


def file_digest(handle: IO[bytes]) -> tuple[str, int]:
    """SHA-256 (hex) and size of a written file, read from its start; left rewound."""
    handle.seek(0)
    digest, size = hashlib.sha256(), 0
    while block := handle.read(_COPY_BLOCK):
        digest.update(block)
        size += len(block)
    handle.seek(0)
    return digest.hexdigest(), size


def bundle_filename(created_at: datetime) -> str:
    return f"gatehouse-evidence-{created_at.astimezone(UTC):%Y%m%dT%H%M%SZ}.zip"


def evidence_export(
    *,
    events: QuerySet[AuditEvent],
    fileobj: IO[bytes],
    actor: Any,
    filters: dict[str, Any],
    request: HttpRequest | None = None,
) -> ExportResult:
    """Write an evidence bundle to ``fileobj`` (readable and seekable) and record
    ``audit.exported`` with the filters, the event count and the bundle's SHA-256.

    The event is written right after the bundle is complete, in its own short transaction:
    holding the ledger's writer lock through a long export would stop every other writer.
    """
    info = write_bundle(events, fileobj, actor=actor, filters=filters)
    bundle_sha256, _ = file_digest(fileobj)
    filename = bundle_filename(info.created_at)
    with transaction.atomic():
        event = record(
            actor=actor,
            action="audit.exported",
            data={
                "filters": filters_as_json(filters),
                "event_count": info.event_count,
                "bundle_sha256": bundle_sha256,
                "manifest_sha256": info.manifest_sha256,
                "tree_size": info.tree_size,
                "root_hash": info.root_hash,
                "filename": filename,
            },
            request=request,
        )
    return ExportResult(bundle=info, bundle_sha256=bundle_sha256, filename=filename, event=event)
