"""Home answers "what needs me, and what do I hold", with empty states that say what comes here."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from accessreq.models import Grant
from accessreq.services.common import now
from portal.models import BackupCode, BackupCodeDevice
from tests.accessreq.workflow_helpers import approve, direct_grant, make_entitlement, submit
from tests.conftest import enrol_totp


def test_anonymous_is_sent_to_sign_in(client) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_a_newcomer_sees_what_will_come_here(verified_client, outsider) -> None:
    body = verified_client(outsider).get("/").content.decode()
    assert "No request of yours is waiting." in body
    assert "You hold no access right now." in body
    assert 'href="/catalog/"' in body
    # Nothing to approve or review: no such section at all.
    assert "Waiting for you" not in body


def test_my_open_request_shows_the_stage_it_waits_at(
    verified_client, requester, manager, owner
) -> None:
    entitlement = make_entitlement(tier="high", owners=[owner], system_owners=[owner])
    request = submit(requester, entitlement)
    body = verified_client(requester).get("/").content.decode()
    assert f'href="/requests/{request.pk}/"' in body
    assert "Waiting for manager" in body
    assert "stage 1 of 2" in body
    assert "sent just now" in body

    approve(manager, request)
    body = verified_client(requester).get("/").content.decode()
    assert "stage 2 of 2" in body


def test_access_ending_soon_offers_more_time_and_later_ends_show_the_date(
    verified_client, requester
) -> None:
    soon = direct_grant(requester, make_entitlement())
    later = direct_grant(requester, make_entitlement(tier="medium"))
    far = now() + timedelta(days=20)
    Grant.objects.filter(pk=later.pk).update(expires_at=far)
    body = verified_client(requester).get("/").content.decode()
    assert re.search(r"Ends in 7 hours 5\d minutes", body)
    assert f'href="/access/{soon.pk}/extend/"' in body
    assert f"Ends {far:%Y-%m-%d %H:%M} UTC" in body
    assert f'href="/access/{later.pk}/extend/"' not in body
    # Soonest to end first.
    assert body.index(f'href="/access/{soon.pk}/"') < body.index(f'href="/access/{later.pk}/"')


def test_an_approver_sees_what_waits_for_them(verified_client, requester, manager) -> None:
    request = submit(requester, make_entitlement())
    body = verified_client(manager).get("/").content.decode()
    assert "Waiting for you" in body
    assert f'href="/approvals/#request-{request.pk}"' in body
    assert "Stage 1 of 1" in body
    assert "Nothing is waiting for your decision." not in body


def test_an_approver_with_nothing_waiting_is_told_so(verified_client, manager, requester) -> None:
    body = verified_client(manager).get("/").content.decode()
    assert "Nothing is waiting for your decision." in body
    assert 'href="/approvals/delegation/"' in body


def test_the_read_only_auditor_gets_evidence_not_requests(verified_client, auditor) -> None:
    body = verified_client(auditor).get("/").content.decode()
    assert 'href="/audit/"' in body and 'href="/campaigns/"' in body
    assert "Your open requests" not in body and "Your access" not in body


def test_backup_code_warnings_say_what_to_do(verified_client, requester) -> None:
    client = verified_client(requester)  # enrolled with 10 codes
    assert "backup code" not in client.get("/").content.decode().lower()

    codes = BackupCode.objects.filter(device__user=requester)
    codes.filter(pk__in=list(codes.values_list("pk", flat=True)[:8])).update(used_at=now())
    assert "2 backup codes left" in client.get("/").content.decode()

    codes.update(used_at=now())
    assert "All your backup codes are used" in client.get("/").content.decode()

    BackupCodeDevice.objects.filter(user=requester).delete()
    body = client.get("/").content.decode()
    assert "You have no backup codes" in body
    assert "Generate a set on Sign-in security" in body


@pytest.mark.django_db
def test_home_queries_do_not_grow_with_rows(
    verified_client, requester, manager, django_assert_max_num_queries
) -> None:
    enrol_totp(manager)
    client = verified_client(manager)
    for _ in range(2):
        submit(requester, make_entitlement())
        direct_grant(manager, make_entitlement())
    with django_assert_max_num_queries(30) as few:
        client.get("/")
    for _ in range(12):
        submit(requester, make_entitlement())
        direct_grant(manager, make_entitlement())
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get("/")
