"""Moving the ledger's database clock in tests: the head query reads these times instead."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import pytest

from audit import services

_CLOCK = {
    "postgresql": "clock_timestamp()",
    "sqlite": "strftime('%Y-%m-%d %H:%M:%f', 'now')",
}


class _SteppedHeadSQL(dict[str, str]):
    """``services._HEAD_SQL`` whose database time is the next of ``times`` on each append."""

    def __init__(self, times: Iterable[datetime]) -> None:
        super().__init__(services._HEAD_SQL)
        self._times = iter(times)

    def __getitem__(self, vendor: str) -> str:
        stamp = next(self._times).astimezone(UTC)
        literal = (
            f"TIMESTAMPTZ '{stamp.isoformat()}'"
            if vendor == "postgresql"
            else f"'{stamp.strftime('%Y-%m-%d %H:%M:%S.%f')}'"
        )
        return super().__getitem__(vendor).replace(_CLOCK[vendor], literal)


def step_database_clock(monkeypatch: pytest.MonkeyPatch, times: Iterable[datetime]) -> None:
    """Each event appended from now on is stamped with the next of ``times`` (as the database
    clock, so the real head query and the never-backwards rule still run)."""
    monkeypatch.setattr(services, "_HEAD_SQL", _SteppedHeadSQL(times))
