"""The audit table refuses UPDATE and DELETE in the database itself (and TRUNCATE on PostgreSQL)."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from audit.actions import UnknownAction
from audit.models import AuditEvent
from audit.services import record


@pytest.fixture
def event(requester) -> AuditEvent:
    return record(actor=requester, action="user.changed", target=requester, data={"x": 1})


@pytest.mark.django_db
def test_orm_update_is_refused(event) -> None:
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(action="auth.login")
    event.refresh_from_db()
    assert event.action == "user.changed"


@pytest.mark.django_db
def test_instance_save_is_refused(event) -> None:
    event.data = {"x": 2}
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        event.save()


@pytest.mark.django_db
def test_raw_sql_delete_is_refused(event) -> None:
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM audit_auditevent")
    assert AuditEvent.objects.filter(pk=event.pk).exists()


@pytest.mark.django_db
def test_orm_delete_is_refused(event) -> None:
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="TRUNCATE exists on PostgreSQL only")
def test_truncate_is_refused_on_postgresql(event) -> None:
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("TRUNCATE audit_auditevent")
    assert AuditEvent.objects.count() == 1


@pytest.mark.django_db
def test_record_refuses_unregistered_actions(requester) -> None:
    with pytest.raises(UnknownAction, match="not registered"):
        record(actor=requester, action="made.up", target=requester)
    assert AuditEvent.objects.count() == 0


@pytest.mark.django_db
def test_event_rolls_back_with_its_change(requester) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        record(actor=requester, action="user.changed", target=requester)
        raise RuntimeError("the change failed")
    assert AuditEvent.objects.count() == 0


@pytest.mark.django_db
def test_event_carries_actor_target_request_and_version(verified_client, requester) -> None:
    client = verified_client(requester)
    client.post(
        "/accounts/logout/", HTTP_USER_AGENT="pytest-agent/1.0", HTTP_X_REQUEST_ID="req-12345678"
    )
    event = AuditEvent.objects.get(action="auth.logout")
    assert event.actor_id == requester.pk
    assert event.actor_kind == "human"
    assert "dev@example.com" in event.actor_name
    assert (event.target_type, event.target_id) == ("portal.user", str(requester.pk))
    assert event.user_agent == "pytest-agent/1.0"
    assert event.request_id == "req-12345678"
    assert event.ip == "127.0.0.1"
    assert event.mfa_method == "totp"
    assert event.mfa_age_seconds is not None and event.mfa_age_seconds < 60
    assert len(event.session_hash) == 64
    assert event.code_version
