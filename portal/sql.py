"""Hand-written SQL for the few hot, fixed statements of the API's authorization path.

Building and compiling an ORM query costs about a millisecond of Python, and PostgreSQL plans a
seven-table join for another two or three: more than the whole budget of an authorization
decision. The statements here are written once, and on PostgreSQL run as prepared statements
(parsed and planned once per connection), through Django's connection, its error translation and
its query log. Everything else uses the ORM.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any, TypeVar

from django.conf import settings
from django.db import connection
from django.db.models import Model

M = TypeVar("M", bound=Model)

# The database clock as the ORM's Now() reads it (statement start; UTC text on SQLite).
NOW = {
    "postgresql": "STATEMENT_TIMESTAMP()",
    "sqlite": "STRFTIME('%%Y-%%m-%%d %%H:%%M:%%f', 'NOW')",
}


def prepared_statements() -> bool:
    """Whether hot statements run prepared: on PostgreSQL unless ``DATABASE_PREPARED_STATEMENTS``
    is off (a pooler that cannot keep them, such as PgBouncer before 1.21 in transaction mode)."""
    return connection.vendor == "postgresql" and bool(settings.DATABASE_PREPARED_STATEMENTS)


def fetch_one(sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
    """The first row of ``sql`` (``%s`` placeholders), or ``None``."""
    if not prepared_statements():
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row: tuple[Any, ...] | None = cursor.fetchone()
            return row
    import psycopg

    connection.ensure_connection()
    connection.validate_no_broken_transaction()
    started = time.monotonic()
    # Django's own cursors bind on the client, which cannot prepare; this one binds on the server
    # and shares the connection (its transaction, its type adapters).
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, prepare=True)
        row = cursor.fetchone()
    if connection.queries_logged:
        connection.queries_log.append(
            {"sql": f"{sql} -- {list(params)!r}", "time": f"{time.monotonic() - started:.3f}"}
        )
    return row


def columns(model: type[Model], alias: str) -> str:
    """Every concrete column of ``model`` as ``alias.column, ...``, in :func:`load`'s order."""
    return ", ".join(f"{alias}.{f.column}" for f in model._meta.concrete_fields)


def width(model: type[Model]) -> int:
    return len(model._meta.concrete_fields)


@cache
def _converters(model: type[Model], vendor: str) -> list[tuple[Any, list[Callable[..., Any]]]]:
    del vendor  # part of the cache key: a test run may switch databases
    table = model._meta.db_table
    found = []
    for field in model._meta.concrete_fields:
        column = field.get_col(table)
        converters = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        found.append((column, converters))
    return found


def load(model: type[M], values: Sequence[Any]) -> M:
    """A ``model`` instance from the values of :func:`columns`, converted as the ORM converts
    them (JSON text, SQLite's datetimes and booleans)."""
    converted = []
    for (column, converters), value in zip(
        _converters(model, connection.vendor), values, strict=True
    ):
        for convert in converters:
            value = convert(value, column, connection)
        converted.append(value)
    names = [f.attname for f in model._meta.concrete_fields]
    return model.from_db(connection.alias, names, converted)
