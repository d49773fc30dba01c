"""Group append: many threads of one process share one ledger transaction per group.

A chained append costs one writer lock, one head read and one commit (an fsync) whatever the
number of events it appends, so high-volume writers whose event *is* the whole change (an API
authorization decision) hand their events to one writer thread per process, which appends
whatever has queued in one transaction (``append_events``). Each event is still its own leaf with
its own sequence and hash, and every caller waits until its event is committed: nothing is
acknowledged before that, and a failed group fails every caller in it.

Called inside a transaction, an event simply joins it (as ``record`` does): events that record a
change to other rows must commit with that change.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from dataclasses import dataclass, field

from django.db import connection

from audit.models import AuditEvent
from audit.services import append_events

log = logging.getLogger(__name__)


class LedgerUnavailable(Exception):
    """The event was not confirmed committed in time; the caller must not act on it."""


@dataclass
class _Ticket:
    event: AuditEvent
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


class GroupWriter:
    """One per process: a queue of events and the thread that appends them in groups."""

    def __init__(self, *, max_group: int = 500) -> None:
        self.max_group = max_group
        self._queue: queue.SimpleQueue[_Ticket | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self.groups = 0  # committed groups, for benchmarks and tests

    def append(self, event: AuditEvent, *, timeout: float = 10.0) -> AuditEvent:
        """Append ``event`` (from ``build_event``); return it once committed, with its sequence.

        Raises ``LedgerUnavailable`` if that took longer than ``timeout`` seconds, or the
        database error that failed its group.
        """
        if connection.in_atomic_block:
            # Inside a transaction the event belongs to it: it commits or rolls back with it.
            append_events([event])
            return event
        self._ensure_thread()
        ticket = _Ticket(event)
        self._queue.put(ticket)
        if not ticket.done.wait(timeout):
            raise LedgerUnavailable(f"the audit event was not committed within {timeout:g}s")
        if ticket.error is not None:
            raise ticket.error
        return event

    def _ensure_thread(self) -> None:
        # A forked worker (gunicorn) inherits the object but not the thread: start its own.
        if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._queue = queue.SimpleQueue()
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._run, name="gatehouse-ledger-writer", daemon=True
                )
                self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Append what is queued, then end the thread and close its database connection."""
        thread = self._thread
        if thread is not None and thread.is_alive() and self._pid == os.getpid():
            self._queue.put(None)
            thread.join(timeout)
        self._thread = None

    def _take_group(self) -> tuple[list[_Ticket], bool]:
        """The next group (at least one ticket unless stopping) and whether to stop after it."""
        first = self._queue.get()
        if first is None:
            return [], True
        group = [first]
        while len(group) < self.max_group:
            try:
                ticket = self._queue.get_nowait()
            except queue.Empty:
                break
            if ticket is None:
                return group, True
            group.append(ticket)
        return group, False

    def _run(self) -> None:
        try:
            stopping = False
            while not stopping:
                group, stopping = self._take_group()
                if group:
                    self._append(group)
        finally:
            connection.close()

    def _append(self, group: list[_Ticket]) -> None:
        try:
            append_events([ticket.event for ticket in group])  # its own transaction
            self.groups += 1
        except Exception as exc:  # handed to every waiting caller, never swallowed
            log.exception("Appending a group of %d audit events failed", len(group))
            for ticket in group:
                ticket.error = exc
            connection.close()  # a broken connection is replaced on the next group
        finally:
            for ticket in group:
                ticket.done.set()


_writer = GroupWriter()


def record_grouped(event: AuditEvent, *, timeout: float = 10.0) -> AuditEvent:
    """Append ``event`` through this process's group writer; returns it once committed."""
    return _writer.append(event, timeout=timeout)
