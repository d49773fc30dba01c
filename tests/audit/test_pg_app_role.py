"""The README's restricted database role really cannot change the ledger (PostgreSQL)."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from django.db import connection


@pytest.mark.skipif(connection.vendor != "postgresql", reason="roles are a PostgreSQL feature")
@pytest.mark.django_db(transaction=True)
def test_app_role_can_append_and_read_but_not_rewrite() -> None:
    role = f"gatehouse_app_{uuid.uuid4().hex[:8]}"
    password = uuid.uuid4().hex
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {role} LOGIN PASSWORD %s", [password])
        try:
            cursor.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
            cursor.execute(
                f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"
            )
            cursor.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}")
            cursor.execute(
                f"REVOKE UPDATE, DELETE, TRUNCATE ON audit_auditevent, audit_checkpoint FROM {role}"
            )
            settings = connection.settings_dict
            with psycopg.connect(
                host=settings["HOST"] or "127.0.0.1",
                port=settings["PORT"] or 5432,
                dbname=settings["NAME"],
                user=role,
                password=password,
                autocommit=True,
            ) as app:
                app.execute("SELECT count(*) FROM audit_auditevent").fetchone()
                for statement in (
                    "UPDATE audit_auditevent SET action = 'x' WHERE false",
                    "DELETE FROM audit_auditevent WHERE false",
                    "TRUNCATE audit_auditevent",
                    "UPDATE audit_checkpoint SET root_hash = 'x' WHERE false",
                ):
                    with pytest.raises(psycopg.errors.InsufficientPrivilege):
                        app.execute(statement)
                privileges = app.execute(
                    "SELECT has_table_privilege('audit_auditevent', 'INSERT'),"
                    " has_table_privilege('portal_user', 'UPDATE')"
                ).fetchone()
                assert privileges == (True, True)
        finally:
            cursor.execute(f"DROP OWNED BY {role}")
            cursor.execute(f"DROP ROLE {role}")
