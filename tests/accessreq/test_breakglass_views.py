"""Break-glass pages: only on-call people take emergency access, with a reason, an incident and a
fresh second factor; reviewers are told at once and review (or revoke) the use afterwards."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.core import mail

from accessreq.models import AccessRequest, Grant, GrantState, RequestKind, RiskTier
from accessreq.services.breakglass import break_glass_take
from accessreq.services.common import MfaContext
from audit.models import AuditEvent
from portal.models import TOTPDevice
from portal.roles import ON_CALL
from tests.conftest import current_code
from tests.factories import EntitlementFactory, EnvironmentFactory, SystemFactory, UserFactory

EMERGENCY = "Payments are failing for every customer since 14:02"


@pytest.fixture
def medic(db, manager):
    return UserFactory(
        display_name="Nia Oncall", email="nia@example.com", manager=manager, groups=[ON_CALL]
    )


@pytest.fixture
def prod_deploy(owner):
    system = SystemFactory(name="payments", slug="payments")
    system.owners.add(owner)
    env = EnvironmentFactory(name="prod", slug="prod", risk_tier=RiskTier.HIGH)
    return EntitlementFactory(
        system=system,
        environment=env,
        name="Deployer",
        emergency_capable=True,
        max_duration=timedelta(hours=8),
    )


@pytest.fixture
def short_admin(prod_deploy):
    """Emergency-capable, but never for longer than one hour."""
    return EntitlementFactory(
        system=prod_deploy.system,
        environment=prod_deploy.environment,
        name="Cluster admin",
        emergency_capable=True,
        max_duration=timedelta(hours=1),
    )


def take_form(entitlement, **extra) -> dict[str, str]:
    return {
        "entitlement": str(entitlement.pk),
        "incident": "INC-1234",
        "reason": EMERGENCY,
        "duration": "60",
        **extra,
    }


def stale(client) -> None:
    session = client.session
    session["mfa_verified_at"] = time.time() - 3600
    session.save()


def taken(medic, entitlement) -> AccessRequest:
    return break_glass_take(
        actor=medic,
        entitlement=entitlement,
        reason=EMERGENCY,
        incident="INC-1234",
        duration=timedelta(hours=1),
        mfa=MfaContext("totp", 5),
    )


# --- The page ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_anonymous_is_sent_to_sign_in(client) -> None:
    for response in (
        client.get("/break-glass/"),
        client.post("/break-glass/", {}),
        client.post("/break-glass/1/review/", {}),
    ):
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_people_not_on_call_get_404(verified_client, outsider, security_admin, prod_deploy) -> None:
    for person in (outsider, security_admin):
        client = verified_client(person)
        assert client.get("/break-glass/").status_code == 404
        assert client.post("/break-glass/", take_form(prod_deploy)).status_code == 404
    assert not AccessRequest.objects.exists() and not Grant.objects.exists()


@pytest.mark.django_db
def test_on_call_sees_emergency_capable_access_and_the_warnings(
    verified_client, medic, prod_deploy, short_admin
) -> None:
    ordinary = EntitlementFactory(system=prod_deploy.system, name="Log reader")
    response = verified_client(medic).get("/break-glass/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Deployer" in html and "Cluster admin" in html and ordinary.name not in html
    assert "Approvers and security admins are notified at once" in html
    assert "reviews this use within 24 hours" in html
    assert "/docs/runbooks/break-glass/" in html and "help-link" in html
    assert "You have not used break-glass" in html
    # Fresh session: no code field.
    assert 'name="code"' not in html


@pytest.mark.django_db
def test_choosing_an_entitlement_caps_the_presets(verified_client, medic, short_admin) -> None:
    response = verified_client(medic).get(f"/break-glass/?entitlement={short_admin.pk}")
    choices = [value for value, _ in response.context["form"].fields["duration"].choices]
    assert choices == [30, 60]
    assert response.context["form"]["entitlement"].value() == short_admin.pk


@pytest.mark.django_db
def test_on_call_with_fresh_mfa_takes_access(
    verified_client,
    medic,
    manager,
    owner,
    security_admin,
    prod_deploy,
    django_capture_on_commit_callbacks,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = verified_client(medic).post("/break-glass/", take_form(prod_deploy))
    use = AccessRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/requests/{use.pk}/"
    assert use.kind == RequestKind.BREAK_GLASS and use.incident == "INC-1234"
    grant = Grant.objects.get()
    assert grant.break_glass and grant.state == GrantState.ACTIVE and grant.beneficiary == medic
    assert grant.expires_at - grant.starts_at == timedelta(hours=1)
    event = AuditEvent.objects.get(action="request.break_glass")
    assert event.actor_id == medic.pk and event.data["incident"] == "INC-1234"
    assert event.data["mfa_age_seconds"] is not None and event.data["mfa_age_seconds"] < 60
    alerted = {m.to[0] for m in mail.outbox if "BREAK-GLASS:" in m.subject}
    assert {manager.email, owner.email, security_admin.email} <= alerted
    assert medic.email not in alerted


@pytest.mark.django_db
def test_stale_session_needs_a_code_in_the_same_form(verified_client, medic, prod_deploy) -> None:
    client = verified_client(medic)
    stale(client)
    assert 'name="code"' in client.get("/break-glass/").content.decode()
    response = client.post("/break-glass/", take_form(prod_deploy))
    assert response.status_code == 400
    html = response.content.decode()
    assert "break-glass needs a fresh second factor" in html
    assert EMERGENCY in html  # what was typed is kept
    assert not Grant.objects.exists()

    code = current_code(TOTPDevice.objects.get(user=medic))
    response = client.post("/break-glass/", take_form(prod_deploy, code=code))
    assert response.status_code == 302
    assert Grant.objects.get().break_glass
    assert AuditEvent.objects.filter(action="auth.mfa.verified", actor_id=medic.pk).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"reason": "it broke"}, "at least 20 characters"),
        ({"incident": "  "}, "Give the incident reference"),
        ({"duration": "600"}, "Select a valid choice"),
    ],
)
def test_bad_input_is_refused(verified_client, medic, prod_deploy, change, error) -> None:
    response = verified_client(medic).post("/break-glass/", take_form(prod_deploy, **change))
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not Grant.objects.exists()


@pytest.mark.django_db
def test_duration_above_the_entitlements_limit_is_refused(
    verified_client, medic, short_admin
) -> None:
    response = verified_client(medic).post("/break-glass/", take_form(short_admin, duration="120"))
    assert response.status_code == 400
    assert "can be taken for at most 1 hour" in response.content.decode()
    assert not Grant.objects.exists()


@pytest.mark.django_db
def test_an_ordinary_entitlement_cannot_be_forged_in(verified_client, medic, prod_deploy) -> None:
    ordinary = EntitlementFactory(system=prod_deploy.system, name="Log reader")
    response = verified_client(medic).post("/break-glass/", take_form(ordinary))
    assert response.status_code == 400
    assert not Grant.objects.exists()


@pytest.mark.django_db
def test_holding_the_access_already_is_a_form_error(verified_client, medic, prod_deploy) -> None:
    taken(medic, prod_deploy)
    response = verified_client(medic).post("/break-glass/", take_form(prod_deploy))
    assert response.status_code == 400
    assert "You already hold this access" in response.content.decode()
    assert Grant.objects.count() == 1


@pytest.mark.django_db
def test_recent_uses_are_listed_with_their_review_state(
    verified_client, medic, prod_deploy
) -> None:
    use = taken(medic, prod_deploy)
    html = verified_client(medic).get("/break-glass/").content.decode()
    assert f'href="/requests/{use.pk}/"' in html and "INC-1234" in html and "Due by" in html


# --- Review -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_owner_reviews_a_use(verified_client, medic, owner, prod_deploy) -> None:
    use = taken(medic, prod_deploy)
    response = verified_client(owner).post(
        f"/break-glass/{use.pk}/review/", {"comment": "Justified: outage INC-1234"}
    )
    assert response.status_code == 302 and response["Location"] == "/approvals/"
    use.refresh_from_db()
    assert use.reviewed_by == owner and use.reviewed_at is not None
    event = AuditEvent.objects.get(action="request.break_glass_reviewed")
    assert event.actor_id == owner.pk and event.data["revoke"] is False
    assert Grant.objects.get().state == GrantState.ACTIVE
    assert "uses to review" not in verified_client(owner).get("/approvals/").content.decode()


@pytest.mark.django_db
def test_review_with_revoke_ends_the_grant(verified_client, medic, owner, prod_deploy) -> None:
    use = taken(medic, prod_deploy)
    response = verified_client(owner).post(
        f"/break-glass/{use.pk}/review/",
        {"comment": "No incident matches this use", "revoke": "on"},
    )
    assert response.status_code == 302
    grant = Grant.objects.get()
    assert grant.state == GrantState.REVOKED and grant.revoked_by == owner
    assert AuditEvent.objects.get(action="request.break_glass_reviewed").data["revoke"] is True
    assert AuditEvent.objects.filter(action="grant.revoked").exists()


@pytest.mark.django_db
def test_review_needs_a_comment(verified_client, medic, owner, prod_deploy) -> None:
    use = taken(medic, prod_deploy)
    response = verified_client(owner).post(f"/break-glass/{use.pk}/review/", {"comment": " "})
    assert response.status_code == 400
    assert "Write what you found" in response.content.decode()
    use.refresh_from_db()
    assert use.reviewed_at is None
    assert not AuditEvent.objects.filter(action="request.break_glass_reviewed").exists()


@pytest.mark.django_db
def test_holder_and_outsiders_cannot_review(verified_client, medic, outsider, prod_deploy) -> None:
    use = taken(medic, prod_deploy)
    for person in (medic, outsider):
        client = verified_client(person)
        for data in ({"comment": "All fine, trust me"}, {"comment": ""}):
            response = client.post(f"/break-glass/{use.pk}/review/", data)
            assert response.status_code == 404
    use.refresh_from_db()
    assert use.reviewed_at is None
    assert (
        verified_client(outsider).post("/break-glass/999999/review/", {"comment": "x"}).status_code
        == 404
    )
