"""Anchors outside the database catch what a database administrator can hide: events deleted
together with the checkpoints that covered them. Tampering is done as an attacker would: drop the
append-only triggers, then DELETE with plain SQL. The webhook anchor is a real local HTTP server."""

from __future__ import annotations

import http.server
import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from audit.anchors import AnchorError
from audit.checkpoints import checkpoint_sign
from audit.db import remove_append_only
from audit.models import AuditEvent, Checkpoint
from audit.services import record


@pytest.fixture
def anchor_file(settings, tmp_path: Path) -> Path:
    settings.AUDIT_ANCHOR_FILE = str(tmp_path / "anchor" / "checkpoints.jsonl")
    return Path(settings.AUDIT_ANCHOR_FILE)


def _add_events(count: int) -> None:
    for n in range(count):
        record(actor=None, action="user.changed", data={"n": n})


def _verify() -> tuple[int, str, str]:
    """Run `manage.py audit verify`: (exit code, stdout, stderr and the error message)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("audit", "verify", stdout=out, stderr=err)
    except CommandError as exc:
        return 1, out.getvalue(), f"{err.getvalue()}\n{exc}"
    return 0, out.getvalue(), err.getvalue()


def _sql(statement: str, params: list[object] | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params or [])


def _cut_tail_with_its_checkpoint(events: int) -> None:
    """Delete the last ``events`` events and the newest checkpoint, triggers dropped first."""
    remove_append_only(connection)
    head = AuditEvent.objects.order_by("-sequence").values_list("sequence", flat=True)[0]
    _sql("DELETE FROM audit_auditevent WHERE sequence > %s", [head - events])
    newest = Checkpoint.objects.order_by("-tree_size").values_list("pk", flat=True)[0]
    _sql("DELETE FROM audit_checkpoint WHERE id = %s", [newest])


# --- The anchor file ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_signing_writes_the_anchor_file_itself(signing_key_file, anchor_file) -> None:
    _add_events(5)
    checkpoint = checkpoint_sign(actor=None)  # no worker, no task: signing anchors
    assert checkpoint is not None
    lines = [json.loads(line) for line in anchor_file.read_text().splitlines()]
    assert lines == [
        {
            "key_id": checkpoint.key_id,
            "root_hash": checkpoint.root_hash,
            "signature": checkpoint.signature,
            "signed_at": lines[0]["signed_at"],
            "tree_size": 6,
        }
    ]
    signed = AuditEvent.objects.get(action="audit.checkpoint.signed")
    assert signed.data["anchors"] == [f"file {anchor_file}"]


@pytest.mark.django_db
def test_verify_names_the_anchors_and_the_unanchored_tail(signing_key_file, anchor_file) -> None:
    _add_events(5)
    checkpoint_sign(actor=None)
    _add_events(3)
    code, out, err = _verify()
    assert code == 0, err
    assert out.startswith("OK: 9 events and 1 checkpoints verified")
    assert f"Anchor checked: file {anchor_file} (1 checkpoints, the newest of 6 events)." in out
    assert "Unanchored tail: 3 events after the last anchored checkpoint (6 events)" in out
    assert "the oldest is" in out and "seconds old" in out


@pytest.mark.django_db
def test_tail_cut_with_its_checkpoint_is_caught_by_the_anchor_file(
    signing_key_file, anchor_file
) -> None:
    _add_events(10)
    checkpoint_sign(actor=None)  # covers 11
    _add_events(4)
    checkpoint_sign(actor=None)  # covers 16
    _cut_tail_with_its_checkpoint(3)  # 13 events left, and only the checkpoint of 11
    code, _, err = _verify()
    assert code == 1
    assert "holds a checkpoint of 16 events but the ledger ends at sequence 13" in err
    assert "the tail was cut off" in err
    assert "first bad sequence 14" in err
    alert = AuditEvent.objects.get(action="alert.ledger.verification_failed")
    assert alert.data["first_bad_sequence"] == 14


@pytest.mark.django_db
def test_tail_cut_that_keeps_the_checkpoint_is_caught(signing_key_file, anchor_file) -> None:
    _add_events(10)
    checkpoint_sign(actor=None)
    remove_append_only(connection)
    _sql("DELETE FROM audit_auditevent WHERE sequence > 8")
    code, _, err = _verify()
    assert code == 1
    assert "first bad sequence 9" in err


@pytest.mark.django_db
def test_a_deleted_checkpoint_is_caught_though_every_event_is_intact(
    signing_key_file, anchor_file
) -> None:
    _add_events(4)
    checkpoint_sign(actor=None)
    _add_events(2)
    checkpoint_sign(actor=None)
    remove_append_only(connection)
    _sql("DELETE FROM audit_checkpoint WHERE tree_size = 5")
    code, _, err = _verify()
    assert code == 1
    assert "holds a checkpoint of 5 events that the database no longer has" in err


@pytest.mark.django_db
def test_an_unwritable_anchor_file_fails_loudly_and_signs_nothing(
    settings, signing_key_file, tmp_path
) -> None:
    settings.AUDIT_ANCHOR_FILE = str(tmp_path)  # a directory: appending to it fails, even as root
    _add_events(3)
    with pytest.raises(AnchorError, match="AUDIT_ANCHOR_FILE"):
        checkpoint_sign(actor=None)
    assert not Checkpoint.objects.exists()
    assert not AuditEvent.objects.filter(action="audit.checkpoint.signed").exists()
    assert AuditEvent.objects.count() == 3  # the chain is as it was

    with pytest.raises(CommandError, match=f"AUDIT_ANCHOR_FILE {tmp_path} could not be written"):
        call_command("audit", "checkpoint", stdout=io.StringIO())
    assert not Checkpoint.objects.exists()


@pytest.mark.django_db
def test_the_beat_task_raises_an_alert_when_the_anchor_file_fails(
    settings, signing_key_file, tmp_path
) -> None:
    from audit.tasks import checkpoint_sign_task

    settings.AUDIT_ANCHOR_FILE = str(tmp_path)
    _add_events(2)
    with pytest.raises(AnchorError):
        checkpoint_sign_task.apply(throw=True)
    alert = AuditEvent.objects.get(action="alert.ledger.anchor_failed")
    assert alert.data["anchor"] == "file" and "could not be written" in alert.data["error"]
    assert not Checkpoint.objects.exists()


# --- Without an anchor --------------------------------------------------------------------------


@pytest.mark.django_db
def test_verify_without_an_anchor_warns_in_development(settings, signing_key_file) -> None:
    settings.AUDIT_ANCHOR_FILE = ""
    settings.AUDIT_ANCHOR_URL = ""
    _add_events(3)
    checkpoint_sign(actor=None)
    code, out, err = _verify()
    assert code == 0
    assert not out.startswith("OK")
    assert "Verified without anchors: 4 events and 1 checkpoints are consistent" in out
    assert "WARNING: no anchor outside the database was checked" in err
    assert "AUDIT_ANCHOR_FILE" in err and "AUDIT_ANCHOR_URL" in err


@pytest.mark.django_db
def test_verify_without_an_anchor_fails_in_production(settings, signing_key_file) -> None:
    settings.AUDIT_ANCHOR_FILE = ""
    settings.AUDIT_ANCHOR_URL = ""
    _add_events(3)
    checkpoint_sign(actor=None)
    settings.PRODUCTION = True  # (production settings refuse to start like this at all)
    code, out, err = _verify()
    assert code == 1
    assert "OK" not in out
    assert "Ledger verification INCOMPLETE: no anchor outside the database" in err


# --- Every N events -----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_checkpoint_follows_every_n_events(settings, signing_key_file, anchor_file) -> None:
    settings.AUDIT_CHECKPOINT_EVERY_EVENTS = 5
    _add_events(4)
    assert not Checkpoint.objects.exists()
    _add_events(1)  # the 5th event: signed (with its own event, the 6th) once it commits
    assert list(Checkpoint.objects.values_list("tree_size", flat=True)) == [6]
    _add_events(4)  # 7..10
    assert list(Checkpoint.objects.values_list("tree_size", flat=True)) == [6, 11]
    assert len(anchor_file.read_text().splitlines()) == 2
    code, out, _ = _verify()
    assert code == 0 and "Unanchored tail: none" in out


# --- The webhook anchor, a real local HTTP receiver ---------------------------------------------


class _Receiver(http.server.BaseHTTPRequestHandler):
    """Stores each POSTed checkpoint; answers GET with them as JSON Lines (if ``serves_get``)."""

    received: list[dict[str, object]] = []
    fail_first = 0
    serves_get = True

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if _Receiver.fail_first > 0:
            _Receiver.fail_first -= 1
            self.send_response(503)
            self.end_headers()
            return
        _Receiver.received.append(json.loads(body))
        answer = json.dumps({"receipt": f"r-{len(_Receiver.received)}"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def do_GET(self) -> None:  # noqa: N802
        if not _Receiver.serves_get:
            self.send_response(405)
            self.end_headers()
            return
        body = "".join(json.dumps(item) + "\n" for item in _Receiver.received).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/jsonl")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook(settings) -> Iterator[str]:
    _Receiver.received, _Receiver.fail_first, _Receiver.serves_get = [], 0, True
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.AUDIT_ANCHOR_FILE = ""
    settings.AUDIT_ANCHOR_URL = f"http://127.0.0.1:{server.server_address[1]}/anchor"
    yield settings.AUDIT_ANCHOR_URL
    server.shutdown()
    server.server_close()


def _sign_and_post(capture) -> Checkpoint:
    with capture(execute=True):  # the webhook task is queued when the signing commits
        checkpoint = checkpoint_sign(actor=None)
    assert checkpoint is not None
    return checkpoint


@pytest.mark.django_db
def test_checkpoint_is_posted_to_the_webhook_after_commit(
    webhook, signing_key_file, django_capture_on_commit_callbacks
) -> None:
    _add_events(1)
    checkpoint = _sign_and_post(django_capture_on_commit_callbacks)
    assert _Receiver.received == [
        {
            "key_id": checkpoint.key_id,
            "root_hash": checkpoint.root_hash,
            "signature": checkpoint.signature,
            "signed_at": _Receiver.received[0]["signed_at"],
            "tree_size": 2,
        }
    ]
    # A success is no new event: an idle ledger then has nothing new to sign.
    assert checkpoint_sign(actor=None) is None


@pytest.mark.django_db
def test_tail_cut_with_its_checkpoint_is_caught_by_the_webhook_receipts(
    webhook, signing_key_file, django_capture_on_commit_callbacks
) -> None:
    _add_events(6)
    _sign_and_post(django_capture_on_commit_callbacks)  # 7
    _add_events(3)
    _sign_and_post(django_capture_on_commit_callbacks)  # 11
    code, out, err = _verify()
    assert code == 0, err
    assert "Anchor checked: webhook AUDIT_ANCHOR_URL (2 checkpoints, the newest of 11" in out
    _cut_tail_with_its_checkpoint(2)
    code, _, err = _verify()
    assert code == 1
    assert "webhook AUDIT_ANCHOR_URL holds a checkpoint of 11 events" in err
    assert "first bad sequence 10" in err


@pytest.mark.django_db
def test_a_receiver_without_receipts_is_named_and_not_counted(
    webhook, signing_key_file, settings, django_capture_on_commit_callbacks
) -> None:
    _Receiver.serves_get = False
    _add_events(2)
    _sign_and_post(django_capture_on_commit_callbacks)
    code, out, err = _verify()
    assert code == 0
    assert "anchor webhook AUDIT_ANCHOR_URL: the receiver returns no receipts" in err
    assert "WARNING: no anchor outside the database was checked" in err
    settings.PRODUCTION = True
    assert _verify()[0] == 1


@pytest.mark.django_db
def test_a_failing_webhook_is_retried_not_lost(webhook, signing_key_file) -> None:
    from celery.exceptions import Retry

    from audit.tasks import checkpoint_anchor

    _Receiver.fail_first = 1
    _add_events(1)
    checkpoint = checkpoint_sign(actor=None)
    assert checkpoint is not None
    with pytest.raises(Retry):
        checkpoint_anchor.apply(args=[checkpoint.pk], throw=True).get()
    assert _Receiver.received == []
    checkpoint_anchor.apply(args=[checkpoint.pk]).get()  # the retry
    assert [r["tree_size"] for r in _Receiver.received] == [2]


@pytest.mark.django_db
def test_anchor_gives_up_with_an_alert_after_the_last_retry(
    settings, signing_key_file, tmp_path
) -> None:
    from audit.tasks import checkpoint_anchor

    settings.AUDIT_ANCHOR_FILE = ""
    settings.AUDIT_ANCHOR_URL = "http://127.0.0.1:9/anchor"  # discard port: nothing listens
    _add_events(1)
    checkpoint = checkpoint_sign(actor=None)
    assert checkpoint is not None
    last_try = checkpoint_anchor.max_retries
    assert last_try is not None
    checkpoint_anchor.apply(args=[checkpoint.pk], retries=last_try).get()
    alert = AuditEvent.objects.get(action="alert.ledger.anchor_failed")
    assert alert.target_id == str(checkpoint.pk)
    assert alert.data["attempts"] == last_try + 1
    code, _, err = _verify()  # the receiver is unreachable: verify can't say OK
    assert code == 1 and "AUDIT_ANCHOR_URL could not be reached" in err
