"""Holding access in the browser: My access, Access you manage, one grant, revoke and extend."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages

from accessreq.models import (
    AccessRequest,
    Connector,
    ConnectorKind,
    Entitlement,
    Grant,
    GrantState,
    Operation,
    ProvisioningTask,
    RequestKind,
    RiskTier,
    TaskStatus,
)
from accessreq.selectors import holds_scope
from accessreq.services.breakglass import break_glass_take
from accessreq.services.common import MfaContext, now
from accessreq.services.grants import grant_revoke
from accessreq.services.requests import request_approve, request_submit
from accessreq.states import RequestState
from audit.models import AuditEvent
from portal.roles import ON_CALL
from tests.factories import EntitlementFactory, EnvironmentFactory, SystemFactory, UserFactory

FRESH = MfaContext("totp", 10)
REASON = "Deploy the hotfix for the payments outage"


@pytest.fixture
def low_env(db):
    return EnvironmentFactory(name="dev", slug="dev", risk_tier=RiskTier.LOW)


@pytest.fixture
def payments(db, owner):
    system = SystemFactory(name="payments", slug="payments")
    system.owners.add(owner)
    return system


def entitlement(system, env, name: str, **fields) -> Entitlement:
    item = EntitlementFactory(
        system=system, environment=env, name=name, slug=name.lower().replace(" ", "-"), **fields
    )
    return item


def granted(person, item, approver, *, hours: int = 8, justification: str = REASON) -> Grant:
    """A grant made the real way: a request, then the one low-tier approval."""
    req = request_submit(
        actor=person,
        entitlement=item,
        justification=justification,
        duration=timedelta(hours=hours),
    )
    request_approve(actor=approver, request_id=req.pk, mfa=FRESH)
    req.refresh_from_db()
    assert req.grant is not None
    return req.grant


@pytest.fixture
def deployer(payments, low_env, owner):
    item = entitlement(payments, low_env, "Deployer")
    item.owners.add(owner)
    return item


@pytest.fixture
def grant(requester, manager, deployer):
    return granted(requester, deployer, manager)


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


# --- Closed to the anonymous, scoped for everyone else ----------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    ["/access/", "/access/managed/", "/access/{id}/", "/access/{id}/extend/"],
)
def test_anonymous_is_sent_to_sign_in(client, grant, path) -> None:
    response = client.get(path.format(id=grant.pk))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_anonymous_revoke_changes_nothing(client, grant) -> None:
    response = client.post(f"/access/{grant.pk}/revoke/", {"reason": "Not needed any more"})
    assert response["Location"].startswith("/accounts/login/")
    grant.refresh_from_db()
    assert grant.state == GrantState.ACTIVE


# --- My access --------------------------------------------------------------------------------


@pytest.fixture
def on_call_requester(requester):
    from django.contrib.auth.models import Group

    requester.groups.add(Group.objects.get_or_create(name=ON_CALL)[0])
    return requester


@pytest.mark.django_db
def test_my_access_shows_active_break_glass_and_recently_ended(
    verified_client, on_call_requester, manager, owner, payments, low_env, grant
) -> None:
    requester = on_call_requester
    rollback = entitlement(payments, low_env, "Rollback", emergency_capable=True)
    break_glass_take(
        actor=requester,
        entitlement=rollback,
        reason="Payments are failing for every customer right now",
        incident="INC-4711",
        duration=timedelta(hours=1),
        mfa=FRESH,
    )
    reader = entitlement(payments, low_env, "Log reader")
    old = granted(requester, reader, manager)
    grant_revoke(actor=owner, grant_id=old.pk, reason="Project finished, no longer needed")

    response = verified_client(requester).get("/access/")
    assert response.status_code == 200
    html = response.content.decode()
    active = {row.grant.entitlement.name for row in response.context["active"]}
    ended = {row.grant.entitlement.name for row in response.context["ended"]}
    assert active == {"Deployer", "Rollback"}
    assert ended == {"Log reader"}
    assert "Break-glass" in html and "row--break-glass" in html
    # No connector: nothing is set up elsewhere, and the page says so rather than "confirmed".
    assert all(str(row.status).startswith("No connector") for row in response.context["active"])
    assert ">No connector</span>" in html and "UTC" in html
    assert "Ends in 7 hours" in html  # the 8-hour grant, a moment after approval
    assert f"/access/{grant.pk}/extend/" in html
    assert "Give up access" in html
    # Who revoked the ended one and why, and that the removal was confirmed.
    assert "by Omar Owner" in html and "Project finished, no longer needed" in html
    assert str(response.context["ended"][0].status).startswith("Nothing to remove")


@pytest.mark.django_db
def test_my_access_of_an_outsider_is_empty_and_links_the_catalog(
    verified_client, outsider, grant
) -> None:
    response = verified_client(outsider).get("/access/")
    assert response.status_code == 200
    html = response.content.decode()
    assert response.context["active"] == [] and response.context["ended"] == []
    assert "You hold no access right now" in html and 'href="/catalog/"' in html
    assert "Deployer" not in html


@pytest.mark.django_db
def test_provisioning_status_words(verified_client, requester, manager, payments, low_env) -> None:
    manual = Connector.objects.create(name="ops desk", kind=ConnectorKind.MANUAL)
    waiting = granted(requester, entitlement(payments, low_env, "Waits", connector=manual), manager)
    failing = granted(requester, entitlement(payments, low_env, "Fails", connector=manual), manager)
    ProvisioningTask.objects.filter(grant=failing).update(status=TaskStatus.FAILED)
    assert waiting.provisioned_at is None

    response = verified_client(requester).get("/access/")
    statuses = {row.grant.entitlement.name: str(row.status) for row in response.context["active"]}
    assert statuses == {
        "Waits": "Waiting for connector, a person sets it up",
        "Fails": "Connector failed, security team alerted",
    }
    html = response.content.decode()
    assert "Waiting for connector" in html
    assert "Connector failed" in html and "security team alerted" in html


def _bulk_grants(person, count: int) -> None:
    """``count`` grants for ``person`` (half live, half ended recently, every fifth break-glass,
    some with connector tasks), written in bulk so the test stays fast."""
    clock = now()
    system = SystemFactory()
    env = EnvironmentFactory(name="dev", slug="dev", risk_tier=RiskTier.LOW)
    connector = Connector.objects.get_or_create(name="bulk desk", kind=ConnectorKind.MANUAL)[0]
    revoker = UserFactory()
    items = Entitlement.objects.bulk_create(
        Entitlement(system=system, environment=env, name=f"Bulk {n}", slug=f"bulk-{system.pk}-{n}")
        for n in range(count)
    )
    requests = AccessRequest.objects.bulk_create(
        AccessRequest(
            requester=person,
            beneficiary=person,
            entitlement=item,
            justification=REASON,
            duration=timedelta(hours=8),
            state=RequestState.ACTIVE if n % 2 == 0 else RequestState.REVOKED,
            kind=RequestKind.BREAK_GLASS if n % 5 == 0 else RequestKind.NEW,
        )
        for n, item in enumerate(items)
    )
    grants = []
    for n, (item, req) in enumerate(zip(items, requests, strict=True)):
        live = n % 2 == 0
        grants.append(
            Grant(
                beneficiary=person,
                entitlement=item,
                request=req,
                state=GrantState.ACTIVE if live else GrantState.REVOKED,
                break_glass=n % 5 == 0,
                starts_at=clock - timedelta(days=2),
                expires_at=clock + timedelta(hours=n + 1) if live else clock - timedelta(hours=1),
                ended_at=None if live else clock - timedelta(days=1),
                revoked_at=None if live else clock - timedelta(days=1),
                revoked_by=None if live else revoker,
                revoke_reason="" if live else "Not needed",
                provisioned_at=clock if n % 3 else None,
            )
        )
    grants = Grant.objects.bulk_create(grants)
    ProvisioningTask.objects.bulk_create(
        ProvisioningTask(
            grant=g,
            operation=Operation.PROVISION,
            cause="activated",
            connector=connector,
            status=TaskStatus.FAILED if n % 2 else TaskStatus.PENDING,
        )
        for n, g in enumerate(grants)
        if n % 3 == 0
    )


@pytest.mark.django_db
def test_my_access_query_count_does_not_grow_with_rows(
    verified_client, requester, django_assert_max_num_queries
) -> None:
    client = verified_client(requester)
    _bulk_grants(requester, 10)
    client.get("/access/")  # warm the session
    with django_assert_max_num_queries(20) as ten:
        response = client.get("/access/")
    assert len(response.context["active"]) == 5
    small = len(ten.captured_queries)

    _bulk_grants(requester, 1000)
    with django_assert_max_num_queries(small) as thousand:
        response = client.get("/access/")
    assert len(response.context["active"]) == 505
    assert response.context["page"].paginator.count == 505
    print(f"my_access queries: 10 grants={small}, 1,010 grants={len(thousand.captured_queries)}")


# --- Access you manage ------------------------------------------------------------------------


@pytest.mark.django_db
def test_managed_access_lists_grants_on_what_the_owner_owns(
    verified_client, owner, requester, manager, grant, payments, low_env
) -> None:
    elsewhere = entitlement(SystemFactory(name="vault", slug="vault"), low_env, "Vault reader")
    other = granted(UserFactory(manager=manager), elsewhere, manager)

    response = verified_client(owner).get("/access/managed/")
    assert response.status_code == 200
    shown = [row.grant for row in response.context["rows"]]
    assert shown == [grant]
    html = response.content.decode()
    assert "Dev Requester" in html and f'action="/access/{grant.pk}/revoke/"' in html
    assert f"/access/{other.pk}/revoke/" not in html


@pytest.mark.django_db
def test_managed_access_for_security_admin_covers_everything_and_filters(
    verified_client, security_admin, manager, grant, low_env
) -> None:
    vault = entitlement(SystemFactory(name="vault", slug="vault"), low_env, "Vault reader")
    other = granted(UserFactory(manager=manager), vault, manager)
    client = verified_client(security_admin)
    everything = client.get("/access/managed/")
    assert {row.grant for row in everything.context["rows"]} == {grant, other}
    filtered = client.get("/access/managed/?q=vault")
    assert [row.grant for row in filtered.context["rows"]] == [other]
    by_person = client.get("/access/managed/?q=dev%40example")
    assert [row.grant for row in by_person.context["rows"]] == [grant]
    nothing = client.get("/access/managed/?q=nothing-like-this")
    assert "No live grant matches your filter" in nothing.content.decode()


@pytest.mark.django_db
def test_managed_access_is_closed_to_people_who_own_nothing(
    verified_client, outsider, requester, grant
) -> None:
    assert verified_client(outsider).get("/access/managed/").status_code == 404
    assert verified_client(requester).get("/access/managed/").status_code == 404


@pytest.mark.django_db
def test_managed_access_query_count_is_flat(
    verified_client, owner, requester, manager, payments, low_env, django_assert_max_num_queries
) -> None:
    client = verified_client(owner)

    def add(count: int) -> None:
        for _ in range(count):
            person = UserFactory(manager=manager)
            granted(person, entitlement(payments, low_env, f"E{person.pk}"), manager)

    add(3)
    client.get("/access/managed/")
    with django_assert_max_num_queries(20) as few:
        client.get("/access/managed/")
    add(30)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get("/access/managed/")
    assert len(response.context["rows"]) == 25 and response.context["page"].has_next()


# --- One grant --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_grant_detail_for_holder_owner_auditor_and_outsider(
    verified_client, requester, owner, auditor, outsider, grant
) -> None:
    mine = verified_client(requester).get(f"/access/{grant.pk}/")
    assert mine.status_code == 200
    html = mine.content.decode()
    assert "Give up access" in html and f"/access/{grant.pk}/extend/" in html
    assert f"/requests/{grant.request_id}/" in html and "origin" in html
    assert REASON in html

    owned = verified_client(owner).get(f"/access/{grant.pk}/")
    assert owned.status_code == 200 and owned.context["revoke_form"] is not None

    audited = verified_client(auditor).get(f"/access/{grant.pk}/")
    assert audited.status_code == 200 and audited.context["revoke_form"] is None
    assert f'action="/access/{grant.pk}/revoke/"' not in audited.content.decode()

    assert verified_client(outsider).get(f"/access/{grant.pk}/").status_code == 404
    assert verified_client(outsider).get("/access/999999/").status_code == 404


@pytest.mark.django_db
def test_grant_detail_shows_provisioning_tasks(
    verified_client, security_admin, requester, manager, payments, low_env
) -> None:
    manual = Connector.objects.create(name="ops desk", kind=ConnectorKind.MANUAL)
    held = granted(requester, entitlement(payments, low_env, "Manual", connector=manual), manager)
    from accessreq.services.provisioning import provisioning_confirm

    task = ProvisioningTask.objects.get(grant=held)
    provisioning_confirm(actor=security_admin, task_id=task.pk, note="Added to the deploy group")
    html = verified_client(requester).get(f"/access/{held.pk}/").content.decode()
    assert "ops desk" in html and "Confirmed" in html
    assert "by Sam Security" in html and "Added to the deploy group" in html


# --- Revoke -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_owner_revokes_and_the_holder_loses_it(verified_client, owner, requester, grant) -> None:
    assert holds_scope(user=requester, scope="deploy", system="payments", environment="dev")
    response = verified_client(owner).post(
        f"/access/{grant.pk}/revoke/",
        {"reason": "Moved to another team", "next": "/access/managed/"},
    )
    assert response.status_code == 302 and response["Location"] == "/access/managed/"
    assert any("Revoked Dev Requester" in m for m in messages_of(response))

    grant.refresh_from_db()
    assert grant.state == GrantState.REVOKED and grant.revoked_by == owner
    assert grant.revoke_reason == "Moved to another team"
    event = AuditEvent.objects.get(action="grant.revoked")
    assert event.actor_id == owner.pk
    assert event.data["reason"] == "Moved to another team"
    assert event.data["grant_id"] == grant.pk
    assert not holds_scope(user=requester, scope="deploy", system="payments", environment="dev")

    page = verified_client(requester).get("/access/")
    assert page.context["active"] == []
    assert [row.grant for row in page.context["ended"]] == [grant]
    assert "Moved to another team" in page.content.decode()


@pytest.mark.django_db
def test_outsider_cannot_revoke(verified_client, outsider, auditor, grant) -> None:
    for person in (outsider, auditor):
        response = verified_client(person).post(
            f"/access/{grant.pk}/revoke/", {"reason": "I do not like it at all"}
        )
        assert response.status_code == 404
    grant.refresh_from_db()
    assert grant.state == GrantState.ACTIVE
    assert not AuditEvent.objects.filter(action="grant.revoked").exists()


@pytest.mark.django_db
def test_revoke_needs_a_reason(verified_client, owner, grant) -> None:
    response = verified_client(owner).post(f"/access/{grant.pk}/revoke/", {"reason": "   "})
    assert response.status_code == 302 and response["Location"] == f"/access/{grant.pk}/"
    assert any("Give a reason" in m for m in messages_of(response))
    grant.refresh_from_db()
    assert grant.state == GrantState.ACTIVE
    assert not AuditEvent.objects.filter(action="grant.revoked").exists()


@pytest.mark.django_db
def test_revoke_is_post_only(verified_client, owner, grant) -> None:
    assert verified_client(owner).get(f"/access/{grant.pk}/revoke/").status_code == 405


@pytest.mark.django_db
def test_holder_gives_up_their_own_access(verified_client, requester, grant) -> None:
    client = verified_client(requester)
    response = client.post(
        f"/access/{grant.pk}/revoke/", {"reason": "Done with the deploy", "next": "/access/"}
    )
    assert response["Location"] == "/access/"
    assert any("You gave up your access" in m for m in messages_of(response))
    grant.refresh_from_db()
    assert grant.state == GrantState.REVOKED and grant.revoked_by == requester
    event = AuditEvent.objects.get(action="grant.revoked")
    assert event.actor_id == requester.pk
    assert "You gave it up" in client.get("/access/").content.decode()


@pytest.mark.django_db
def test_revoke_ignores_an_outside_next_and_refuses_an_ended_grant(
    verified_client, owner, grant
) -> None:
    client = verified_client(owner)
    first = client.post(
        f"/access/{grant.pk}/revoke/",
        {"reason": "Moved to another team", "next": "https://evil.example.com/"},
    )
    assert first["Location"] == f"/access/{grant.pk}/"
    again = client.post(f"/access/{grant.pk}/revoke/", {"reason": "Moved to another team"})
    assert any("already ended" in m for m in messages_of(again))
    assert AuditEvent.objects.filter(action="grant.revoked").count() == 1


@pytest.mark.django_db
def test_forged_fields_in_a_revoke_are_ignored(verified_client, owner, outsider, grant) -> None:
    verified_client(owner).post(
        f"/access/{grant.pk}/revoke/",
        {"reason": "Moved to another team", "revoked_by": outsider.pk, "state": "active"},
    )
    grant.refresh_from_db()
    assert grant.state == GrantState.REVOKED and grant.revoked_by == owner


# --- Extend -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_extend_page_is_prefilled_for_the_holder_only(
    verified_client, requester, owner, outsider, grant
) -> None:
    response = verified_client(requester).get(f"/access/{grant.pk}/extend/")
    assert response.status_code == 200
    form = response.context["form"]
    assert form["justification"].value() == f"Extension: {REASON}"
    assert form["duration"].value() == str(8 * 3600)
    assert "Request extension" in response.content.decode()
    # Nobody else extends someone's access, not even the owner who could revoke it.
    assert verified_client(owner).get(f"/access/{grant.pk}/extend/").status_code == 404
    assert verified_client(outsider).get(f"/access/{grant.pk}/extend/").status_code == 404


@pytest.mark.django_db
def test_extend_post_creates_an_extension_request(verified_client, requester, grant) -> None:
    client = verified_client(requester)
    response = client.post(
        f"/access/{grant.pk}/extend/",
        {"justification": f"Extension: {REASON}", "duration": str(8 * 3600)},
    )
    created = AccessRequest.objects.get(kind=RequestKind.EXTENSION)
    assert response.status_code == 302
    assert response["Location"] == f"/requests/{created.pk}/"
    assert created.grant_id == grant.pk and created.state == RequestState.PENDING
    assert created.duration == timedelta(hours=8)
    assert created.justification == f"Extension: {REASON}"
    event = AuditEvent.objects.get(action="request.submitted", target_id=str(created.pk))
    assert event.actor_id == requester.pk and event.data["kind"] == "extension"
    assert event.data["extends_grant"] == grant.pk

    # A second visit says it is already asked and links it, and a second POST changes nothing.
    again = client.get(f"/access/{grant.pk}/extend/")
    assert "You already asked for an extension" in again.content.decode()
    assert f"/requests/{created.pk}/" in again.content.decode()
    repost = client.post(
        f"/access/{grant.pk}/extend/",
        {"justification": f"Extension: {REASON}", "duration": str(8 * 3600)},
    )
    assert repost.status_code == 409
    assert AccessRequest.objects.filter(kind=RequestKind.EXTENSION).count() == 1
    # My access links the pending extension instead of offering a second one.
    assert f"/requests/{created.pk}/" in client.get("/access/").content.decode()


@pytest.mark.django_db
def test_extend_refuses_a_duration_above_the_max_and_a_short_reason(
    verified_client, requester, grant
) -> None:
    client = verified_client(requester)
    too_long = client.post(
        f"/access/{grant.pk}/extend/",
        {"justification": f"Extension: {REASON}", "duration": str(90 * 86400)},
    )
    assert too_long.status_code == 400
    assert "Select a valid choice" in too_long.content.decode()
    short = client.post(
        f"/access/{grant.pk}/extend/", {"justification": "more", "duration": str(3600)}
    )
    assert short.status_code == 400
    assert "at least 20 characters" in short.content.decode()
    assert not AccessRequest.objects.filter(kind=RequestKind.EXTENSION).exists()


@pytest.mark.django_db
def test_extension_duration_is_capped_at_the_entitlement_max(
    verified_client, requester, manager, payments, low_env
) -> None:
    short = entitlement(payments, low_env, "Short", max_duration=timedelta(hours=4))
    held = granted(requester, short, manager, hours=4)
    Entitlement.objects.filter(pk=short.pk).update(max_duration=timedelta(hours=2))
    response = verified_client(requester).get(f"/access/{held.pk}/extend/")
    form = response.context["form"]
    assert form["duration"].value() == str(2 * 3600)
    offered = [int(value) for value, _ in form.fields["duration"].choices]
    assert max(offered) == 2 * 3600


@pytest.mark.django_db
def test_access_past_its_end_is_not_active_even_before_the_expiry_job(
    verified_client, requester, grant
) -> None:
    clock = now()
    # The end time passes; the expiry job has not run yet, so the row still says active.
    Grant.objects.filter(pk=grant.pk).update(
        starts_at=clock - timedelta(hours=9), expires_at=clock - timedelta(minutes=5)
    )
    response = verified_client(requester).get("/access/")
    assert response.context["active"] == []
    ended = response.context["ended"]
    assert [row.grant for row in ended] == [grant]
    assert str(ended[0].status) == "Ended, removal starts within a minute"
    assert not holds_scope(user=requester, scope="deploy", system="payments", environment="dev")


@pytest.mark.django_db
def test_recently_ended_keeps_thirty_days(verified_client, requester, owner, grant) -> None:
    grant_revoke(actor=owner, grant_id=grant.pk, reason="Moved to another team")
    client = verified_client(requester)
    assert [row.grant for row in client.get("/access/").context["ended"]] == [grant]
    long_ago = now() - timedelta(days=31)
    Grant.objects.filter(pk=grant.pk).update(
        starts_at=long_ago - timedelta(hours=1), revoked_at=long_ago, ended_at=long_ago
    )
    response = client.get("/access/")
    assert response.context["ended"] == []
    assert "Nothing ended in the last 30 days" in response.content.decode()


@pytest.mark.django_db
def test_deactivating_a_person_revokes_what_they_hold(requester, owner, security_admin) -> None:
    from accessreq.models import GrantState, RiskTier
    from accessreq.services.common import MfaContext
    from accessreq.services.requests import request_approve, request_submit
    from portal.services.people import user_deactivate
    from tests.factories import EntitlementFactory, EnvironmentFactory

    entitlement = EntitlementFactory(
        environment=EnvironmentFactory(slug="dev", risk_tier=RiskTier.LOW)
    )
    entitlement.owners.add(owner)
    access_request = request_submit(
        actor=requester,
        entitlement=entitlement,
        justification="Build the payout batching feature",
        duration=timedelta(hours=8),
    )
    request_approve(actor=owner, request_id=access_request.pk, mfa=MfaContext("totp", 1))
    user_deactivate(user=requester, actor=security_admin, reason="left the company")
    access_request.refresh_from_db()
    assert access_request.state == "revoked"
    grant = access_request.grant
    assert grant is not None and grant.state == GrantState.REVOKED
    assert grant.revoke_reason == "Account deactivated: left the company"
    assert grant.revoked_by == security_admin
