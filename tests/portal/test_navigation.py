"""The main navigation shows each person what they can use; the pages stay reachable by address."""

from __future__ import annotations

import re
from datetime import timedelta

from accessreq.services.common import now
from accessreq.services.delegation import delegation_create
from portal.roles import ON_CALL
from tests.accessreq.workflow_helpers import direct_grant, make_entitlement, submit
from tests.factories import UserFactory

_NAV = re.compile(r'<nav class="main-nav" aria-label="Main">(.*?)</nav>', re.S)
_LABEL = re.compile(r'data-label="([^"]+)"')

EVERYONE = ["Home", "Catalog"]


def nav_labels(client) -> list[str]:
    body = client.get("/").content.decode()
    match = _NAV.search(body)
    assert match, "no main navigation on the home page"
    return _LABEL.findall(match.group(1))


def test_anonymous_has_no_navigation(client) -> None:
    response = client.get("/accounts/login/")
    assert 'aria-label="Main"' not in response.content.decode()


def test_a_developer_sees_requesting_and_holding_but_not_approving(
    verified_client, requester
) -> None:
    assert nav_labels(verified_client(requester)) == [*EVERYONE, "My requests", "My access", "Docs"]


def test_approvals_and_reviews_stay_reachable_and_explain_themselves(
    verified_client, outsider
) -> None:
    client = verified_client(outsider)
    approvals = client.get("/approvals/")
    assert approvals.status_code == 200
    assert "Nothing is waiting for you." in approvals.content.decode()
    reviews = client.get("/reviews/")
    assert reviews.status_code == 200
    assert "No access to review right now." in reviews.content.decode()


def test_a_manager_sees_approvals_and_reviews(verified_client, manager, requester) -> None:
    labels = nav_labels(verified_client(manager))
    assert labels == [
        *EVERYONE,
        "My requests",
        "My access",
        "Approvals",
        "Reviews",
        "Docs",
    ]


def test_an_owner_sees_approvals_with_the_count_waiting(verified_client, owner, requester) -> None:
    entitlement = make_entitlement(owners=[owner])
    submit(requester, entitlement)
    client = verified_client(owner)
    assert {"Approvals", "Reviews"} <= set(nav_labels(client))
    body = client.get("/").content.decode()
    assert re.search(
        r'data-label="Approvals">Approvals</span> <span class="count-badge"[^>]*>1<', body
    )


def test_a_delegate_sees_approvals_while_the_delegation_is_in_force(
    verified_client, manager, outsider
) -> None:
    client = verified_client(outsider)
    assert "Approvals" not in nav_labels(client)
    clock = now()
    delegation_create(
        actor=manager,
        delegate=outsider,
        starts_at=clock - timedelta(hours=1),
        ends_at=clock + timedelta(days=2),
        reason="Holiday",
    )
    assert "Approvals" in nav_labels(client)


def test_on_call_people_see_break_glass(db, verified_client) -> None:
    on_call = UserFactory(groups=[ON_CALL])
    assert "Break-glass" in nav_labels(verified_client(on_call))


def test_the_read_only_auditor_sees_evidence_not_workflow(verified_client, auditor) -> None:
    client = verified_client(auditor)
    assert nav_labels(client) == [
        *EVERYONE,
        "Dashboard",
        "Campaigns",
        "Pipelines",
        "Audit",
        "Reports",
        "Docs",
    ]


def test_an_auditor_who_asks_for_access_then_sees_their_requests_and_access(
    verified_client, auditor
) -> None:
    entitlement = make_entitlement()
    direct_grant(auditor, entitlement)
    assert nav_labels(verified_client(auditor)) == [
        *EVERYONE,
        "My requests",
        "My access",
        "Dashboard",
        "Campaigns",
        "Pipelines",
        "Audit",
        "Reports",
        "Docs",
    ]


def test_a_security_admin_sees_the_admin_tools(verified_client, security_admin) -> None:
    assert nav_labels(verified_client(security_admin)) == [
        *EVERYONE,
        "My requests",
        "My access",
        "Approvals",
        "Dashboard",
        "Campaigns",
        "Provisioning",
        "Directory sync",
        "Pipelines",
        "Audit",
        "Reports",
        "Docs",
        "Admin",
    ]


def test_owners_of_a_service_account_see_pipelines(db, verified_client, owner) -> None:
    from tests.accessreq.api.conftest import make_service_account

    client = verified_client(owner)
    assert "Pipelines" not in nav_labels(client)
    make_service_account("nightly-deployer", owner)
    assert "Pipelines" in nav_labels(verified_client(owner))


def test_one_entry_is_current_the_closest_prefix(verified_client, auditor, monkeypatch) -> None:
    """An entry for /reports/ beside the dashboard's /reports/dashboard/: on the dashboard only
    the dashboard is current."""
    from portal import navigation

    reports = navigation.NavItem("Reports", "audit:search", lambda c: c.reads_audit, "/reports/")
    monkeypatch.setattr(navigation, "NAV", (*navigation.NAV, reports))
    body = verified_client(auditor).get("/reports/dashboard/").content.decode()
    current = re.findall(
        r'aria-current="page"><span class="main-nav__label" data-label="([^"]+)"', body
    )
    assert current == ["Dashboard"]
