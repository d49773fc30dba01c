"""Concurrent writers keep one valid chain (threads against the real database)."""

from __future__ import annotations

import threading

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
