"""Database triggers that make the audit tables append-only, on PostgreSQL and SQLite.

Used by the migration that installs them; tests that must empty the database between
transactional cases remove and reinstall them (see tests/conftest.py).
"""

from __future__ import annotations

from typing import Any

APPEND_ONLY_TABLES = ("audit_auditevent", "audit_checkpoint")


def _statements(vendor: str, table: str) -> tuple[list[str], list[str]]:
    if vendor == "postgresql":
        install = [
            """
            CREATE OR REPLACE FUNCTION gatehouse_refuse_change() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '% on % is refused: the audit ledger is append-only',
                    TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
            END;
            $$
            """,
            f"""
            CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION gatehouse_refuse_change()
            """,
            f"""
            CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
            FOR EACH STATEMENT EXECUTE FUNCTION gatehouse_refuse_change()
            """,
        ]
        remove = [
            f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}",
            f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}",
        ]
        return install, remove
    if vendor == "sqlite":
        install = [
            f"""
            CREATE TRIGGER IF NOT EXISTS {table}_no_update BEFORE UPDATE ON {table}
            BEGIN
                SELECT RAISE(ABORT, 'UPDATE on {table} is refused: the ledger is append-only');
            END
            """,
            f"""
            CREATE TRIGGER IF NOT EXISTS {table}_no_delete BEFORE DELETE ON {table}
            BEGIN
                SELECT RAISE(ABORT, 'DELETE on {table} is refused: the ledger is append-only');
            END
            """,
        ]
        remove = [
            f"DROP TRIGGER IF EXISTS {table}_no_update",
            f"DROP TRIGGER IF EXISTS {table}_no_delete",
        ]
        return install, remove
    raise NotImplementedError(f"No append-only triggers for database vendor {vendor!r}.")


def install_append_only(connection: Any, tables: tuple[str, ...] = APPEND_ONLY_TABLES) -> None:
    with connection.cursor() as cursor:
        for table in tables:
            install, remove = _statements(connection.vendor, table)
            for sql in remove + install:
                cursor.execute(sql)


def remove_append_only(connection: Any, tables: tuple[str, ...] = APPEND_ONLY_TABLES) -> None:
    with connection.cursor() as cursor:
        for table in tables:
            _, remove = _statements(connection.vendor, table)
            for sql in remove:
                cursor.execute(sql)
