"""Deactivating a person ends their sessions at once; admin changes keep history and audit."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from portal.models import Session, User
from portal.services.people import user_set_employment_status


def _admin_change_payload(user: User, **changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "email": user.email,
        "display_name": user.display_name,
        "team": user.team_id or "",
        "manager": user.manager_id or "",
        "employment_status": user.employment_status,
        "is_active": "on" if user.is_active else "",
        "is_staff": "on" if user.is_staff else "",
        "groups": [],
        "last_login_0": "",
        "last_login_1": "",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


@pytest.mark.django_db
def test_deactivation_in_admin_ends_every_session(verified_client, security_admin, requester):
    admin = verified_client(security_admin)
    admin.user = security_admin
    laptop, phone = verified_client(requester), verified_client(requester)
    assert laptop.get("/").status_code == 200 and phone.get("/").status_code == 200
    assert Session.objects.filter(user_id=requester.pk).count() == 2

    payload = _admin_change_payload(requester, is_active="")
    response = admin.post(f"/admin/portal/user/{requester.pk}/change/", payload)
    assert response.status_code == 302, response.content.decode()[:2000]

    requester.refresh_from_db()
    assert requester.is_active is False
    assert Session.objects.filter(user_id=requester.pk).count() == 0
    for client in (laptop, phone):
        assert client.get("/").status_code == 302
    event = AuditEvent.objects.get(action="user.deactivated")
    assert event.actor_id == security_admin.pk
    assert event.data["sessions_ended"] == 2
    latest = requester.history.latest()
    assert latest.is_active is False
    assert latest.history_user_id == security_admin.pk


@pytest.mark.django_db
def test_leaving_the_organisation_deactivates(verified_client, security_admin, requester):
    client = verified_client(requester)
    user_set_employment_status(user=requester, status="left", actor=security_admin)
    requester.refresh_from_db()
    assert (requester.employment_status, requester.is_active) == ("left", False)
    assert client.get("/").status_code == 302
    assert list(
        AuditEvent.objects.exclude(action="auth.login").values_list("action", flat=True)
    ) == [
        "user.deactivated",
        "person.left",
    ]


@pytest.mark.django_db
def test_unknown_employment_status_changes_nothing(security_admin, requester):
    with pytest.raises(ValueError, match="Unknown employment status"):
        user_set_employment_status(user=requester, status="retired", actor=security_admin)
    requester.refresh_from_db()
    assert requester.employment_status == "active"
    assert AuditEvent.objects.count() == 0


@pytest.mark.django_db
def test_admin_needs_staff_and_a_verified_session(verified_client, requester, security_admin):
    refused = verified_client(requester).get("/admin/", follow=True)
    assert refused.status_code == 403
    assert "may not use the admin site" in refused.content.decode()
    assert verified_client(security_admin).get("/admin/").status_code == 200


@pytest.mark.django_db
def test_history_without_a_request_is_attributed_to_the_system_actor(requester):
    requester.display_name = "Renamed by a job"
    requester.save()
    latest = requester.history.latest()
    system = User.objects.system_actor()
    assert latest.history_user_id == system.pk
    assert system.kind == "system" and not system.is_active and not system.has_usable_password()


@pytest.mark.django_db
def test_task_changes_carry_the_system_actor_and_the_person_who_caused_them(requester):
    from portal.history import acting_as
    from portal.models import Team

    system = User.objects.system_actor()
    with acting_as(system, caused_by=requester):
        team = Team.objects.create(name="Night shift", slug="night-shift")
    row = team.history.latest()
    assert row.history_user_id == system.pk
    assert row.history_change_reason == f"on behalf of Dev Requester (user #{requester.pk})"


@pytest.mark.django_db
def test_admin_team_and_manager_changes_are_moves(verified_client, security_admin, requester):
    from accessreq.models import Campaign
    from tests.accessreq.workflow_helpers import direct_grant, make_entitlement
    from tests.factories import TeamFactory, UserFactory

    direct_grant(requester, make_entitlement())
    team, boss = TeamFactory(name="Data"), UserFactory(display_name="Bea Boss")
    payload = _admin_change_payload(requester, team=team.pk, manager=boss.pk)
    response = verified_client(security_admin).post(
        f"/admin/portal/user/{requester.pk}/change/", payload
    )
    assert response.status_code == 302, response.content.decode()[:2000]

    requester.refresh_from_db()
    assert (requester.team, requester.manager) == (team, boss)
    moved = AuditEvent.objects.get(action="person.moved")
    assert moved.actor_id == security_admin.pk and moved.data["source"] == "admin"
    assert moved.data["team"]["after"] == "Data" and moved.data["manager"]["after"] == "Bea Boss"
    campaign = Campaign.objects.get(pk=moved.data["review_campaign_id"])
    assert list(campaign.items.values_list("reviewer", flat=True)) == [boss.pk]


@pytest.mark.django_db
def test_admin_marking_someone_left_offboards_them(verified_client, security_admin, requester):
    from accessreq.models import Grant
    from tests.accessreq.workflow_helpers import direct_grant, make_entitlement

    direct_grant(requester, make_entitlement())
    payload = _admin_change_payload(requester, employment_status="left")
    response = verified_client(security_admin).post(
        f"/admin/portal/user/{requester.pk}/change/", payload
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    requester.refresh_from_db()
    assert (requester.employment_status, requester.is_active) == ("left", False)
    assert not Grant.objects.filter(beneficiary=requester).live().exists()
    left = AuditEvent.objects.get(action="person.left")
    assert left.data["source"] == "admin" and left.data["grants_revoked"] == 1
