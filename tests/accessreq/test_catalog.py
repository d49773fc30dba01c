"""The catalog page: closed to anonymous users, searchable, and query count flat in rows."""

from __future__ import annotations

import pytest

from accessreq.models import Entitlement, Environment, RiskTier
from audit.models import AuditEvent
from tests.factories import EntitlementFactory, EnvironmentFactory, SystemFactory


@pytest.fixture
def catalog(db, owner):
    dev = EnvironmentFactory(name="dev", slug="dev", risk_tier=RiskTier.LOW)
    prod = EnvironmentFactory(name="prod", slug="prod", risk_tier=RiskTier.HIGH)
    payments = SystemFactory(name="payments-service", slug="payments-service")
    vault = SystemFactory(name="vault", slug="vault")
    items = [
        EntitlementFactory(system=payments, environment=dev, name="Deployer", slug="deployer"),
        EntitlementFactory(system=payments, environment=prod, name="Deployer", slug="deployer"),
        EntitlementFactory(
            system=vault,
            environment=prod,
            name="Secret reader",
            slug="secret-reader",
            scopes=["read-secrets"],
        ),
    ]
    items[1].owners.add(owner)
    return items


@pytest.mark.django_db
def test_anonymous_is_sent_to_sign_in(client) -> None:
    assert client.get("/catalog/")["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_lists_everything_for_any_verified_person(verified_client, outsider, catalog) -> None:
    response = verified_client(outsider).get("/catalog/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "3 entitlements" in html
    assert "payments-service" in html and "Secret reader" in html and "Omar Owner" in html


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?q=vault", {"Secret reader"}),
        ("?q=read-secrets", {"Secret reader"}),
        ("?q=payments+prod", {"payments-service / prod / Deployer"}),
        ("?tier=low", {"payments-service / dev / Deployer"}),
        ("?q=nothing-like-this", set()),
    ],
)
def test_search_and_tier_filter(verified_client, requester, catalog, query, expected) -> None:
    response = verified_client(requester).get("/catalog/" + query)
    assert response.status_code == 200
    shown = {str(e) for e in response.context["page"].object_list}
    if expected == {"Secret reader"}:
        assert shown == {"vault / prod / Secret reader"}
    else:
        assert shown == expected
    if not expected:
        assert "No entitlement matches your search" in response.content.decode()


@pytest.mark.django_db
def test_bad_filter_is_a_form_error_not_a_crash(verified_client, requester, catalog) -> None:
    response = verified_client(requester).get("/catalog/?tier=extreme&q=%00")
    assert response.status_code == 400
    html = response.content.decode()
    assert "Select a valid choice" in html
    assert "not allowed" in html


@pytest.mark.django_db
def test_inactive_entitlements_are_hidden(verified_client, requester, catalog) -> None:
    Entitlement.objects.filter(slug="secret-reader").update(is_active=False)
    response = verified_client(requester).get("/catalog/")
    assert "Secret reader" not in response.content.decode()


@pytest.mark.django_db
def test_query_count_does_not_grow_with_rows(
    verified_client, requester, catalog, django_assert_max_num_queries
) -> None:
    client = verified_client(requester)
    client.get("/catalog/")  # warm the session and caches
    with django_assert_max_num_queries(12) as small:
        client.get("/catalog/")
    prod = Environment.objects.get(slug="prod")
    for _ in range(20):
        EntitlementFactory(environment=prod)
    with django_assert_max_num_queries(len(small.captured_queries)):
        client.get("/catalog/")


@pytest.mark.django_db
def test_admin_edit_of_an_entitlement_is_audited_with_history(
    verified_client, security_admin, catalog
) -> None:
    entitlement = catalog[1]
    client = verified_client(security_admin)
    page = client.get(f"/admin/accessreq/entitlement/{entitlement.pk}/change/")
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        if isinstance(value, list):
            data[name] = [getattr(v, "pk", v) for v in value]
        elif value is None:
            data[name] = ""
        elif hasattr(value, "pk"):
            data[name] = value.pk
        else:
            data[name] = value
    data["scopes"] = list(entitlement.scopes.values_list("pk", flat=True))
    data["owners"] = list(entitlement.owners.values_list("pk", flat=True))
    data["max_duration"] = "04:00:00"
    data["ticket_required"] = "on"
    data.pop("is_active", None)
    data["is_active"] = "on"
    response = client.post(f"/admin/accessreq/entitlement/{entitlement.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    event = AuditEvent.objects.get(action="admin.object.changed")
    assert event.actor_id == security_admin.pk
    assert event.target_type == "accessreq.entitlement"
    assert "max_duration" in event.data["fields"]
    assert entitlement.history.latest().history_user_id == security_admin.pk


@pytest.mark.django_db
def test_descriptions_do_not_repeat_the_system_and_environment_columns(
    verified_client, requester, catalog
) -> None:
    deployer = catalog[1]
    deployer.description = "Deployer on payments-service in prod: deploy a new version."
    deployer.save()
    html = verified_client(requester).get("/catalog/").content.decode()
    assert '<span class="catalog-summary">Deploy a new version.</span>' in html
    # The whole text is still one hover away.
    assert 'title="Deployer on payments-service in prod: deploy a new version."' in html


@pytest.mark.django_db
def test_more_owners_are_counted_and_named_for_screen_readers(
    verified_client, requester, catalog, owner, manager
) -> None:
    catalog[1].owners.add(manager)
    html = verified_client(requester).get("/catalog/").content.decode()
    assert '+1<span class="visually-hidden"> more: Omar Owner</span>' in html or (
        '+1<span class="visually-hidden"> more: Mina Manager</span>' in html
    )
