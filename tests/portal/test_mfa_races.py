"""Two submissions of one TOTP code at the same moment: exactly one is accepted."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test import Client

from audit.models import AuditEvent
from tests.conftest import current_code, enrol_totp, password_login
from tests.factories import UserFactory


@pytest.mark.django_db(transaction=True)
def test_parallel_submissions_of_one_code_verify_once() -> None:
    user = UserFactory()
    device = enrol_totp(user)
    clients = [Client() for _ in range(4)]
    for client in clients:
        password_login(client, user)
    code = current_code(device)
    barrier = threading.Barrier(len(clients))
    statuses: list[int] = []

    def submit(client: Client) -> None:
        barrier.wait()
        try:
            statuses.append(client.post("/mfa/verify/", {"code": code}).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # One wins; the others see "already used" or, once that failure counts, the throttle.
    assert statuses.count(302) == 1
    assert set(statuses) - {302} <= {400, 429}
    assert len(statuses) == 4
    assert AuditEvent.objects.filter(action="auth.mfa.verified").count() == 1
    assert AuditEvent.objects.filter(action="auth.mfa.failed").count() == 3


@pytest.mark.django_db
def test_email_management_is_closed(verified_client, requester) -> None:
    assert verified_client(requester).get("/accounts/email/").status_code == 404
