"""Evidence export: the page, the bundle, and the offline verifier run as a stranger would."""

from __future__ import annotations

import ast
import csv
import hashlib
import io
import json
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from audit import export
from audit.export import ExportError, write_bundle
from audit.models import AuditEvent, Checkpoint, SigningKey
from audit.services import record
from audit.verify_bundle import verify

URL = "/audit/export/"
MEMBERS = {
    "README.txt",
    "verify_bundle.py",
    "events.jsonl",
    "events.csv",
    "leaves.bin",
    "checkpoint.json",
    "public_keys.json",
    "manifest.json",
    "manifest.sig",
}
FORMULA = "=cmd|' /C calc'!A0"


pytestmark = pytest.mark.usefixtures("signing_key_file")


@pytest.fixture
def auditor_client(verified_client, auditor) -> Client:
    """The auditor's verified session (signing in records auth.login, before ``events``)."""
    return verified_client(auditor)


@pytest.fixture
def events(auditor_client, requester, security_admin) -> list[AuditEvent]:
    recorded = [
        dict(actor=requester, action="auth.login", target=requester),
        dict(actor=requester, action="auth.mfa.verified", target=requester, data={"m": "é"}),
        dict(actor=security_admin, action="user.changed", target=requester, data={"n": 1}),
        dict(
            actor=security_admin,
            action="admin.object.changed",
            target=("accessreq.entitlement", "-7", FORMULA),
            data={"note": "+1 line\nbreak"},
        ),
        dict(actor=requester, action="auth.logout", target=requester),
    ]
    made = []
    for kwargs in recorded:
        time.sleep(0.002)  # SQLite's clock counts milliseconds: give each event its own time
        made.append(record(**kwargs))
    return made


def _download(client: Client, data: dict[str, str] | None = None) -> tuple[bytes, Any]:
    response = client.post(URL, data or {})
    assert response.status_code == 200, response.content[:500]
    # Reading to the end closes the response (and its temporary file), as the test client does.
    body = b"".join(response.streaming_content)
    return body, response


def _members(bundle: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _rewrite(bundle: bytes, name: str, change: Callable[[bytes], bytes]) -> bytes:
    """The same ZIP with one member's bytes changed (and a valid CRC, as an editor would)."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(bundle)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            data = source.read(info)
            target.writestr(info, change(data) if info.filename == name else data)
    return out.getvalue()


def _flip_middle_byte(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1 :]


def _run_offline(verifier: Path, bundle: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """The verifier in a fresh isolated interpreter: no project on sys.path, no Django settings."""
    return subprocess.run(
        [sys.executable, "-I", str(verifier), str(bundle), *extra],
        cwd=verifier.parent,
        env={"PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def offline(tmp_path: Path) -> Path:
    folder = tmp_path / "offline"
    folder.mkdir()
    return folder


def _save(folder: Path, bundle: bytes, name: str = "bundle.zip") -> tuple[Path, Path]:
    """Write the bundle and its own verify_bundle.py into ``folder``."""
    path = folder / name
    path.write_bytes(bundle)
    verifier = folder / "verify_bundle.py"
    if not verifier.exists():
        verifier.write_bytes(_members(bundle)["verify_bundle.py"])
    return path, verifier


# --- The page -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_anonymous_is_sent_to_sign_in() -> None:
    response = Client().post(URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_outsider_gets_404_and_nothing_is_exported(verified_client, outsider, events) -> None:
    client = verified_client(outsider)
    assert client.get(URL).status_code == 404
    assert client.post(URL).status_code == 404
    assert not AuditEvent.objects.filter(action="audit.exported").exists()
    assert not Checkpoint.objects.exists()


@pytest.mark.django_db
def test_get_shows_the_filters_and_a_post_button_without_exporting(auditor_client, events) -> None:
    since = "2026-01-01T10:00:00.250000"
    response = auditor_client.get(URL, {"action": "auth.", "since": since})
    assert response.status_code == 200
    page = response.content.decode()
    assert '<input type="hidden" name="action" value="auth.">' in page
    assert f'<input type="hidden" name="since" value="{since}">' in page  # to the microsecond
    assert 'method="post"' in page
    assert "up to event #" in page
    assert not AuditEvent.objects.filter(action="audit.exported").exists()
    assert not Checkpoint.objects.exists()


@pytest.mark.django_db
def test_invalid_filters_are_refused(auditor_client, events) -> None:
    client = auditor_client
    response = client.get(URL, {"since": "2026-01-02T00:00:00", "until": "2026-01-01T00:00:00"})
    assert response.status_code == 400
    assert "must be later" in response.content.decode()
    assert client.post(URL, {"action": "auth.*; DROP"}).status_code == 400
    assert not AuditEvent.objects.filter(action="audit.exported").exists()


@pytest.mark.django_db
def test_stale_mfa_is_sent_to_verify_with_this_page_as_next(
    auditor_client, events, settings
) -> None:
    client = auditor_client
    session = client.session
    session["mfa_verified_at"] = time.time() - settings.MFA_STEP_UP_SECONDS - 5
    session.save()
    response = client.post(URL, {"action": "auth."})
    here = f"{URL}?{urlencode({'action': 'auth.'})}"
    assert response.status_code == 302
    assert response["Location"] == f"/mfa/verify/?{urlencode({'next': here})}"
    assert not AuditEvent.objects.filter(action="audit.exported").exists()
    assert not Checkpoint.objects.exists()


@pytest.mark.django_db
def test_export_records_exactly_one_audit_event(auditor_client, auditor, events) -> None:
    auth_events = AuditEvent.objects.filter(action__startswith="auth.").count()
    bundle, response = _download(auditor_client, {"action": "auth."})
    assert response["Content-Type"] == "application/zip"
    disposition = response["Content-Disposition"]
    assert disposition.startswith('attachment; filename="gatehouse-evidence-')
    assert disposition.endswith('Z.zip"')
    assert "no-store" in response["Cache-Control"]

    exported = AuditEvent.objects.get(action="audit.exported")
    assert exported.actor_id == auditor.pk
    assert exported.data["filters"] == {"action": "auth."}
    assert exported.data["event_count"] == auth_events
    assert exported.data["bundle_sha256"] == hashlib.sha256(bundle).hexdigest()
    assert exported.data["filename"] in disposition
    assert exported.ip == "127.0.0.1" and exported.mfa_method == "totp"
    manifest = json.loads(_members(bundle)["manifest.json"])
    assert (
        exported.data["manifest_sha256"]
        == hashlib.sha256(_members(bundle)["manifest.json"]).hexdigest()
    )
    assert manifest["exported_by"]["id"] == auditor.pk
    # The export signed a checkpoint that covers every event before it.
    checkpoint = Checkpoint.objects.get()
    assert manifest["checkpoint"]["tree_size"] == checkpoint.tree_size
    # The checkpoint covers its own audit.checkpoint.signed event; only the export follows it.
    assert checkpoint.tree_size == exported.sequence - 1
    signed = AuditEvent.objects.get(sequence=checkpoint.tree_size)
    assert signed.action == "audit.checkpoint.signed"


@pytest.mark.django_db
def test_security_admins_may_export_too(verified_client, security_admin, events) -> None:
    bundle, _ = _download(verified_client(security_admin), {"action": "user."})
    assert _members(bundle)["events.jsonl"].count(b"\n") == 1
    assert AuditEvent.objects.get(action="audit.exported").actor_id == security_admin.pk


@pytest.mark.django_db
def test_export_queries_do_not_grow_with_events(auditor_client, requester) -> None:
    client = auditor_client

    def queries_for_export() -> int:
        with CaptureQueriesContext(connection) as captured:
            _download(client)
        return len(captured)

    for _ in range(3):
        record(actor=requester, action="user.changed", target=requester)
    queries_for_export()  # the first export also publishes the signing key
    few = queries_for_export()
    for _ in range(60):
        record(actor=requester, action="user.changed", target=requester)
    assert queries_for_export() == few


# --- The bundle ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_bundle_from_the_view_verifies_offline(auditor_client, events, offline: Path) -> None:
    before = list(AuditEvent.objects.values_list("sequence", flat=True))
    bundle, _ = _download(auditor_client)
    # The bundle also holds the checkpoint's own signed event, which the checkpoint covers.
    everything = [*before, before[-1] + 1]
    assert AuditEvent.objects.get(sequence=before[-1] + 1).action == "audit.checkpoint.signed"
    members = _members(bundle)
    assert set(members) == MEMBERS
    path, verifier = _save(offline, bundle)

    result = _run_offline(verifier, path)

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    n = len(everything)
    assert len(lines) == 1 and lines[0].startswith(f"OK: {n} events match checkpoint of {n}")
    manifest = json.loads(members["manifest.json"])
    assert manifest["format"] == "gatehouse-evidence-v1"
    assert manifest["event_count"] == n
    checkpoint = json.loads(members["checkpoint.json"])
    assert len(members["leaves.bin"]) == 32 * checkpoint["tree_size"]
    lines_out = members["events.jsonl"].decode().splitlines()
    assert [json.loads(line)["seq"] for line in lines_out] == everything
    assert members["verify_bundle.py"] == Path(export.bundle_format.__file__).read_bytes()
    assert b"python verify_bundle.py bundle.zip" in members["README.txt"]


@pytest.mark.django_db
@pytest.mark.parametrize("member", sorted(MEMBERS))
def test_one_flipped_byte_in_any_file_fails_naming_it(
    auditor_client, events, offline: Path, member: str
) -> None:
    bundle, _ = _download(auditor_client)
    _, verifier = _save(offline, bundle)  # the untampered verifier
    tampered, _ = _save(offline, _rewrite(bundle, member, _flip_middle_byte), "tampered.zip")

    result = _run_offline(verifier, tampered)

    assert result.returncode == 1, result.stdout
    assert result.stdout.startswith("FAILED:")
    problems = [line for line in result.stdout.splitlines() if line.startswith("  - ")]
    assert problems and any(member in line for line in problems), result.stdout


@pytest.mark.django_db
def test_edited_event_is_caught_even_with_the_manifest_hash_updated(
    auditor_client, events, tmp_path: Path
) -> None:
    bundle, _ = _download(auditor_client)
    members = _members(bundle)
    edited = members["events.jsonl"].replace(b'"auth.logout"', b'"auth.login"')
    manifest = json.loads(members["manifest.json"])
    manifest["files"]["events.jsonl"]["sha256"] = hashlib.sha256(edited).hexdigest()
    bundle = _rewrite(bundle, "events.jsonl", lambda _: edited)
    bundle = _rewrite(bundle, "manifest.json", lambda _: json.dumps(manifest).encode())
    (tmp_path / "b.zip").write_bytes(bundle)

    problems = verify(str(tmp_path / "b.zip"))

    assert any(p.startswith("manifest.json: the signature") for p in problems), problems
    logout = events[-1].sequence
    assert any(
        p.startswith("events.jsonl: line") and f"event {logout} does not hash to leaf" in p
        for p in problems
    ), problems
    assert any(p.startswith("events.csv: the row for sequence") for p in problems), problems


@pytest.mark.django_db
def test_csv_cells_that_look_like_formulas_arrive_as_text(
    auditor_client, events, tmp_path: Path
) -> None:
    bundle, _ = _download(auditor_client, {"action": "admin."})
    text = _members(bundle)["events.csv"].decode("utf-8-sig")
    header, *rows = list(csv.reader(io.StringIO(text, newline="")))
    assert header[:5] == ["sequence", "time", "actor", "kind", "action"]
    assert len(rows) == 1
    row = dict(zip(header, rows[0], strict=True))
    assert row["target repr"] == "'" + FORMULA
    assert row["target id"] == "'-7"
    assert row["action"] == "admin.object.changed"
    assert json.loads(row["data"]) == {"note": "+1 line\nbreak"}
    (tmp_path / "b.zip").write_bytes(bundle)
    assert verify(str(tmp_path / "b.zip")) == []


@pytest.mark.django_db
def test_filters_restrict_the_exported_events(auditor_client, events, security_admin) -> None:
    client = auditor_client

    def exported(data: dict[str, str]) -> list[tuple[int, str]]:
        bundle, _ = _download(client, data)
        lines = _members(bundle)["events.jsonl"].decode().splitlines()
        return [(json.loads(x)["seq"], json.loads(x)["action"]) for x in lines]

    def utc(event: AuditEvent) -> str:
        return event.occurred_at.astimezone(UTC).replace(tzinfo=None).isoformat()

    by_seq = [(e.sequence, e.action) for e in events]
    since_first = {"since": utc(events[0])}
    assert exported({"action": "auth.", **since_first}) == [by_seq[0], by_seq[1], by_seq[4]]
    assert exported({"since": utc(events[1]), "until": utc(events[3])}) == by_seq[1:3]
    assert exported({"action": "auth.", "since": utc(events[2])}) == [by_seq[4]]
    # The search page's other filters apply too: actor, target, free text.
    assert exported({"actor": str(security_admin.pk), **since_first}) == by_seq[2:4]
    assert exported({"target": "accessreq.entitlement:-7"}) == [by_seq[3]]
    assert exported({"q": "break", **since_first}) == [by_seq[3]]
    # A code, not a prefix: auth.login.failed is not in it.
    record(actor=None, action="auth.login.failed", data={"email": "x@example.com"})
    assert exported({"action": "auth.login", **since_first}) == [by_seq[0]]
    manifest_filters = json.loads(
        _members(_download(client, {"action": "user.changed"})[0])["manifest.json"]
    )["filters"]
    assert manifest_filters == {"action": "user.changed"}


@pytest.mark.django_db
def test_chunked_reads_make_the_same_bundle(
    auditor_client, events, monkeypatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(export, "EVENT_CHUNK", 2)
    monkeypatch.setattr(export, "LEAF_CHUNK", 3)
    bundle, _ = _download(auditor_client)
    (tmp_path / "b.zip").write_bytes(bundle)
    assert verify(str(tmp_path / "b.zip")) == []
    lines = _members(bundle)["events.jsonl"].decode().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == list(
        AuditEvent.objects.filter(sequence__lte=len(lines)).values_list("sequence", flat=True)
    )
    assert len(lines) > 5


@pytest.mark.django_db
def test_trusted_keys_pin_the_bundle_keys(
    auditor_client, events, offline: Path, tmp_path: Path
) -> None:
    bundle, _ = _download(auditor_client)
    path, verifier = _save(offline, bundle)
    published = [{"key_id": k.key_id, "public_key": k.public_key} for k in SigningKey.objects.all()]
    trusted = tmp_path / "keys.json"
    trusted.write_text(json.dumps({"keys": published}))
    result = _run_offline(verifier, path, "--trusted-keys", str(trusted))
    assert result.returncode == 0, result.stdout
    assert "keys pinned by --trusted-keys" in result.stdout

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from audit import signing

    other = signing.public_bytes(Ed25519PrivateKey.generate().public_key())
    other_id = hashlib.sha256(other).hexdigest()[:16]
    trusted.write_text(json.dumps({"keys": [{"key_id": other_id, "public_key": other.hex()}]}))
    result = _run_offline(verifier, path, "--trusted-keys", str(trusted))
    assert result.returncode == 1
    assert (
        "public_keys.json: key" in result.stdout and "not among the trusted keys" in result.stdout
    )


@pytest.mark.django_db
def test_command_writes_a_verifying_bundle_and_records_it(events, tmp_path: Path) -> None:
    out = io.StringIO()
    target = tmp_path / "cron.zip"
    auth_events = AuditEvent.objects.filter(action__startswith="auth.").count()
    call_command("audit_export", "--action", "auth.", "-o", str(target), stdout=out)
    assert f": {auth_events} events," in out.getvalue()
    assert verify(str(target)) == []
    exported = AuditEvent.objects.get(action="audit.exported")
    assert exported.actor_kind == "system"
    assert exported.data["bundle_sha256"] == hashlib.sha256(target.read_bytes()).hexdigest()
    assert not list(tmp_path.glob(".*.partial"))


@pytest.mark.django_db
def test_empty_ledger_has_nothing_to_export() -> None:
    with pytest.raises(ExportError, match="empty"):
        write_bundle(AuditEvent.objects.all(), io.BytesIO(), actor=None, filters={})


def test_verifier_needs_only_the_standard_library_and_cryptography() -> None:
    source = Path(export.bundle_format.__file__).read_text()
    imported = set()
    # Auditors may run an older Python than the server: the README promises 3.9.
    for node in ast.walk(ast.parse(source, feature_version=(3, 9))):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported - set(sys.stdlib_module_names) == {"cryptography"}
