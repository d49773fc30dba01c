"""Group append: threads of one process share a ledger transaction, each event its own leaf, and
nobody hears back before their event is committed. Real threads on the real database."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from django.db import connection, transaction

from audit.group import GroupWriter, LedgerUnavailable
from audit.models import AuditEvent
from audit.services import build_event, lock_ledger, record
from audit.verify import ledger_verify

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def writer() -> Iterator[GroupWriter]:
    group_writer = GroupWriter()
    yield group_writer
    group_writer.stop()  # its connection closes, so the test database can be flushed


def _event(n: int) -> AuditEvent:
    return build_event(actor=None, action="user.changed", data={"n": n})


def _in_threads(count: int, work: Callable[[int], None]) -> list[BaseException]:
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            work(n)
        except BaseException as exc:  # collected and asserted by the caller
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


@pytest.fixture
def ledger_lock_holder() -> Iterator[tuple[threading.Event, threading.Event]]:
    """A thread that holds the ledger's writer lock from ``held`` until ``release`` is set."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                lock_ledger()
                if connection.vendor == "sqlite":  # the write lock comes with the first write
                    record(actor=None, action="user.changed", data={"holder": True})
                held.set()
                release.wait(60)
        finally:
            connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    assert held.wait(30)
    yield held, release
    release.set()
    thread.join(60)


def test_parallel_callers_get_committed_gapless_events(signing_key_file, writer) -> None:
    returned: list[int] = []

    def work(worker: int) -> None:
        for n in range(25):
            event = writer.append(_event(worker * 100 + n))
            # Acknowledged means committed: another connection already sees it.
            assert AuditEvent.objects.filter(sequence=event.sequence).exists()
            returned.append(event.sequence)

    assert _in_threads(8, work) == []
    sequences = list(AuditEvent.objects.values_list("sequence", flat=True))
    assert sequences == list(range(1, 201))
    assert sorted(returned) == sequences
    assert ledger_verify().ok


def test_events_queued_while_the_ledger_is_busy_commit_as_one_group(
    signing_key_file, ledger_lock_holder, writer
) -> None:
    _, release = ledger_lock_holder
    done = threading.Barrier(9)

    def work(n: int) -> None:
        writer.append(_event(n))
        done.wait(30)

    def wait_for_queue(size: int) -> None:
        for _ in range(3000):
            if writer._queue.qsize() == size:
                return
            threading.Event().wait(0.01)
        raise AssertionError(f"the queue never reached {size}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    threads[0].start()
    while writer._thread is None:
        threading.Event().wait(0.01)
    threading.Event().wait(0.5)  # time to queue its event
    wait_for_queue(0)  # the writer took the first event and waits for the ledger lock
    for thread in threads[1:]:
        thread.start()
    wait_for_queue(7)  # seven more wait behind it
    release.set()
    done.wait(60)
    for thread in threads:
        thread.join(30)
    # The first event's group, then the other seven in one: two commits for eight events.
    assert writer.groups == 2
    assert AuditEvent.objects.filter(action="user.changed", data__holder=True).count() == (
        1 if connection.vendor == "sqlite" else 0
    )
    assert AuditEvent.objects.count() == 8 + (1 if connection.vendor == "sqlite" else 0)
    assert ledger_verify().ok


def test_a_failed_group_fails_every_caller_and_commits_nothing(signing_key_file, writer) -> None:
    writer.append(_event(0))
    _refuse_inserts(True)
    try:
        errors = _in_threads(4, lambda n: writer.append(_event(n)))
    finally:
        _refuse_inserts(False)
    assert len(errors) == 4
    assert all("refused for the test" in str(e) for e in errors)
    assert AuditEvent.objects.count() == 1
    after = writer.append(_event(9))  # the writer carries on with a fresh connection
    assert after.sequence == 2
    assert ledger_verify().ok


def test_an_unconfirmed_event_is_reported_not_acknowledged(
    signing_key_file, ledger_lock_holder, writer
) -> None:
    _, release = ledger_lock_holder
    with pytest.raises(LedgerUnavailable, match="not committed within 0.3s"):
        writer.append(_event(1), timeout=0.3)
    # The caller was told "not recorded"; the event itself is not lost once the lock frees.
    release.set()
    writer.append(_event(2))
    assert sorted(e.data["n"] for e in AuditEvent.objects.filter(data__has_key="n")) == [1, 2]


def test_inside_a_transaction_the_event_joins_it(signing_key_file, writer) -> None:
    with pytest.raises(RuntimeError, match="the change failed"), transaction.atomic():
        writer.append(_event(1))
        raise RuntimeError("the change failed")
    assert not AuditEvent.objects.exists()  # rolled back with the change
    with transaction.atomic():
        writer.append(_event(2))
    assert writer.groups == 0  # never went through the writer thread
    assert list(AuditEvent.objects.values_list("sequence", flat=True)) == [1]


def _refuse_inserts(on: bool) -> None:
    """A real database trigger that makes every insert into the ledger fail."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            if on:
                cursor.execute(
                    "CREATE OR REPLACE FUNCTION gatehouse_test_refuse() RETURNS trigger "
                    "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused for the test'; END; $$"
                )
                cursor.execute(
                    "CREATE TRIGGER test_refuse BEFORE INSERT ON audit_auditevent "
                    "FOR EACH ROW EXECUTE FUNCTION gatehouse_test_refuse()"
                )
            else:
                cursor.execute("DROP TRIGGER IF EXISTS test_refuse ON audit_auditevent")
        elif on:
            cursor.execute(
                "CREATE TRIGGER test_refuse BEFORE INSERT ON audit_auditevent "
                "BEGIN SELECT RAISE(ABORT, 'refused for the test'); END"
            )
        else:
            cursor.execute("DROP TRIGGER IF EXISTS test_refuse")
