"""Concurrent writers keep one valid chain; the anchor webhook is a real local HTTP server."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator

import pytest
from django.db import connection, transaction

from audit.checkpoints import checkpoint_sign
from audit.models import AuditEvent
from audit.services import record
from audit.verify import ledger_verify


@pytest.mark.django_db(transaction=True)
def test_parallel_writers_keep_the_chain_valid(settings, tmp_path) -> None:
    settings.AUDIT_SIGNING_KEY_FILE = str(tmp_path / "key.pem")
    threads_count, per_thread = 8, 15
    barrier = threading.Barrier(threads_count)
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            barrier.wait()
            for n in range(per_thread):
                with transaction.atomic():
                    record(actor=None, action="user.changed", data={"worker": worker, "n": n})
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(i,)) for i in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not errors
    sequences = list(AuditEvent.objects.order_by("sequence").values_list("sequence", flat=True))
    assert sequences == list(range(1, threads_count * per_thread + 1))
    checkpoint_sign(actor=None)
    result = ledger_verify()
    assert result.ok, result.problems


class _Collector(http.server.BaseHTTPRequestHandler):
    received: list[dict[str, object]] = []
    fail_first = 0

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if _Collector.fail_first > 0:
            _Collector.fail_first -= 1
            self.send_response(503)
            self.end_headers()
            return
        _Collector.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    _Collector.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/anchor"
    server.shutdown()
    server.server_close()


@pytest.mark.django_db
def test_checkpoint_is_posted_to_the_anchor_webhook(webhook, settings, tmp_path) -> None:
    from audit.tasks import checkpoint_anchor

    settings.AUDIT_SIGNING_KEY_FILE = str(tmp_path / "key.pem")
    settings.AUDIT_ANCHOR_URL = webhook
    record(actor=None, action="user.changed")
    checkpoint = checkpoint_sign(actor=None)
    assert checkpoint is not None
    checkpoint_anchor.apply(args=[checkpoint.pk]).get()
    assert _Collector.received == [
        {
            "key_id": checkpoint.key_id,
            "root_hash": checkpoint.root_hash,
            "signature": checkpoint.signature,
            "signed_at": _Collector.received[0]["signed_at"],
            "tree_size": 1,
        }
    ]
    event = AuditEvent.objects.get(action="audit.checkpoint.anchored")
    assert event.data == {"webhook_status": 204}


@pytest.mark.django_db
def test_a_failing_webhook_is_retried_not_lost(webhook, settings, tmp_path) -> None:
    from celery.exceptions import Retry

    from audit.tasks import checkpoint_anchor

    settings.AUDIT_SIGNING_KEY_FILE = str(tmp_path / "key.pem")
    settings.AUDIT_ANCHOR_URL = webhook
    _Collector.fail_first = 1
    record(actor=None, action="user.changed")
    checkpoint = checkpoint_sign(actor=None)
    assert checkpoint is not None
    with pytest.raises(Retry):
        checkpoint_anchor.apply(args=[checkpoint.pk], throw=True).get()
    assert not AuditEvent.objects.filter(action="audit.checkpoint.anchored").exists()
    checkpoint_anchor.apply(args=[checkpoint.pk]).get()  # the retry
    assert len(_Collector.received) == 1
    assert AuditEvent.objects.filter(action="audit.checkpoint.anchored").count() == 1


@pytest.mark.django_db
def test_anchor_gives_up_with_an_alert_after_the_last_retry(settings, tmp_path) -> None:
    from audit.tasks import checkpoint_anchor

    settings.AUDIT_SIGNING_KEY_FILE = str(tmp_path / "key.pem")
    settings.AUDIT_ANCHOR_URL = "http://127.0.0.1:9/anchor"  # discard port: nothing listens
    record(actor=None, action="user.changed")
    checkpoint = checkpoint_sign(actor=None)
    assert checkpoint is not None
    last_try = checkpoint_anchor.max_retries
    assert last_try is not None
    checkpoint_anchor.apply(args=[checkpoint.pk], retries=last_try).get()
    alert = AuditEvent.objects.get(action="alert.ledger.anchor_failed")
    assert alert.target_id == str(checkpoint.pk)
    assert alert.data["attempts"] == last_try + 1
