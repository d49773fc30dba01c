"""``manage.py seed_demo``: a believable organisation, loaded idempotently, whose personas can
sign in with the published password and the code from ``manage.py totp``."""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.db import transaction
from django.db.models import Count, Q
from django.test import Client
from pytest_django import Settings

from accessreq.models import Entitlement, Environment, RiskTier, Scope, System
from audit.models import AuditEvent
from portal.demo import DEMO_PASSWORD, PERSONAS, persona_lines
from portal.models import Team, TOTPDevice, User
from portal.roles import AUDITOR, ON_CALL, SECURITY_ADMIN

pytestmark = pytest.mark.django_db

PERSONA_EMAILS = [p.email for p in PERSONAS]


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def row_counts() -> dict[str, int]:
    models = [
        Team,
        User,
        Scope,
        Environment,
        System,
        Entitlement,
        TOTPDevice,
        System.owners.through,
        Entitlement.scopes.through,
        Entitlement.owners.through,
        User.groups.through,
        Group,
        User.history.model,
        System.history.model,
        Entitlement.history.model,
    ]
    return {model._meta.label: model.objects.count() for model in models}


@pytest.fixture(scope="class")
def seeded(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    """Seed once for the class (about a second); each test runs in a savepoint inside this
    transaction, which is rolled back after the last test. Yields the command's output."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield seed()
        transaction.set_rollback(True)


@pytest.mark.usefixtures("seeded")
class TestSeeded:
    def test_the_organisation_meets_the_minimums(self) -> None:
        humans = User.objects.humans()

        assert Team.objects.count() >= 5
        assert humans.count() >= 31
        assert humans.filter(manager__isnull=False).count() >= 30
        top = humans.get(manager__isnull=True)  # exactly one person, the CTO, has no manager
        directors = humans.filter(team__slug="leadership").exclude(pk=top.pk)
        assert directors.exists()
        assert set(directors.values_list("manager", flat=True)) == {top.pk}
        leads = humans.filter(reports__isnull=False).exclude(team__slug="leadership").distinct()
        assert leads.count() >= 5
        assert not leads.exclude(manager__in=directors).exists()
        assert not humans.filter(team__isnull=True).exists()
        assert all(e.endswith("@example.com") for e in humans.values_list("email", flat=True))
        assert humans.filter(employment_status=User.EmploymentStatus.LEAVING).count() == 2

        assert System.objects.count() == 10
        assert not System.objects.annotate(n=Count("owners")).filter(n=0).exists()
        tiers = dict(Environment.objects.values_list("slug", "risk_tier"))
        assert tiers["dev"] == RiskTier.LOW
        assert tiers["staging"] == RiskTier.MEDIUM
        assert tiers["prod"] == RiskTier.HIGH
        assert {"deploy", "rollback", "read-secrets", "read-logs", "admin"} <= set(
            Scope.objects.values_list("slug", flat=True)
        )

    def test_entitlements_are_sensible(self) -> None:
        entitlements = Entitlement.objects.annotate(
            n_scopes=Count("scopes", distinct=True), n_owners=Count("owners", distinct=True)
        )

        assert entitlements.count() >= 40
        assert not entitlements.filter(Q(n_scopes=0) | Q(n_owners=0)).exists()
        assert not System.objects.filter(entitlements__isnull=True).exists()
        prod = entitlements.filter(environment__slug="prod")
        dev = entitlements.filter(environment__slug="dev")
        assert not prod.filter(ticket_required=False).exists()
        assert not dev.filter(ticket_required=True).exists()
        assert max(prod.values_list("max_duration", flat=True)) < min(
            dev.values_list("max_duration", flat=True)
        )

    def test_personas_have_their_roles_and_everyone_else_is_scenery(self) -> None:
        people = {u.email: u for u in User.objects.filter(email__in=PERSONA_EMAILS)}
        developer, manager = people["developer@example.com"], people["manager@example.com"]
        owner, security = people["owner@example.com"], people["security@example.com"]
        auditor = people["auditor@example.com"]

        assert developer.manager == manager
        assert owner.owned_systems.count() >= 2
        assert owner.owned_entitlements.filter(environment__slug="prod").exists()
        assert security.is_staff and security.in_group(SECURITY_ADMIN)
        assert auditor.in_group(AUDITOR) and not auditor.is_staff
        # The developer is on call (break-glass), and in no group with admin rights.
        assert not developer.is_staff
        assert list(developer.groups.values_list("name", flat=True)) == [ON_CALL]
        for user in people.values():
            assert user.check_password(DEMO_PASSWORD)
            assert TOTPDevice.objects.filter(user=user, confirmed=True, confirmed_at__isnull=False)

        scenery = User.objects.humans().exclude(email__in=PERSONA_EMAILS)
        assert not any(person.has_usable_password() for person in scenery)
        assert not TOTPDevice.objects.filter(user__in=scenery).exists()

    @pytest.mark.parametrize("email", PERSONA_EMAILS)
    def test_persona_signs_in_with_the_password_and_the_totp_command(self, email: str) -> None:
        client = Client()
        login = client.post("/accounts/login/", {"login": email, "password": DEMO_PASSWORD})
        assert login.status_code == 302
        # Already enrolled: the gate asks for a code, not for enrolment.
        assert client.get("/")["Location"].startswith("/mfa/verify/")

        out = StringIO()
        call_command("totp", email, stdout=out, stderr=StringIO())
        verify = client.post("/mfa/verify/", {"code": out.getvalue().strip()})

        assert verify.status_code == 302
        assert client.get("/").status_code == 200

    def test_history_rows_are_attributed_to_the_system_actor(self) -> None:
        actor = User.objects.system_actor()
        for model in (Team, User, Scope, Environment, System, Entitlement):
            history = model.history.all()
            assert history.exists(), model
            assert not history.exclude(history_user=actor).exists(), model

    def test_output_lists_each_persona_with_its_secret(self, seeded: str) -> None:
        lines = persona_lines()
        text = "\n".join(lines)

        # The backup codes' file is written when the seeding commits (not in this rolled-back
        # class); a file left by an earlier run is named on one more line.
        assert len(lines) - 2 * len(PERSONAS) in (0, 1)
        for persona in PERSONAS:
            device = TOTPDevice.objects.get(user__email=persona.email, confirmed=True)
            assert persona.role in text and persona.email in text
            assert f"TOTP secret: {device.base32_key}" in text
            assert f"current code: .venv/bin/python manage.py totp {persona.email}" in text
        assert text.count(f"password: {DEMO_PASSWORD}") == len(PERSONAS)
        assert "Created this run: 8 teams, 34 people" in seeded
        assert "DEMO ONLY" in seeded and text in seeded

    def test_a_second_run_adds_nothing_and_prints_the_same_secrets(self, seeded: str) -> None:
        before = row_counts()

        output = seed()

        assert row_counts() == before
        assert "Nothing was missing, so nothing was added." in output
        assert "\n".join(persona_lines()) in output
        assert "\n".join(persona_lines()) in seeded
        first, second = AuditEvent.objects.filter(action="demo.seeded")
        actor = User.objects.system_actor()
        assert {(e.actor_id, e.actor_kind) for e in (first, second)} == {(actor.pk, "system")}
        assert first.data["created"]["entitlements"] == first.data["totals"]["entitlements"]
        assert set(second.data["created"].values()) == {0}
        assert second.data["totals"] == first.data["totals"]
        assert DEMO_PASSWORD not in str(first.data)

    def test_portal_edits_survive_a_reseed_and_missing_rows_come_back(self) -> None:
        payments = System.objects.get(slug="payments-service")
        payments.description = "Edited in the portal."
        payments.save()
        payments.owners.remove(User.objects.get(email="tobias.reinholt@example.com"))
        developer = User.objects.get(email="developer@example.com")
        developer.display_name = "Dana W."
        developer.save()
        keys = dict(TOTPDevice.objects.values_list("user__email", "encrypted_key"))
        vault_admin = {
            "system__slug": "vault",
            "environment__slug": "prod",
            "slug": "administrator",
        }
        Entitlement.objects.get(**vault_admin).delete()

        output = seed()

        payments.refresh_from_db()
        assert payments.description == "Edited in the portal."
        assert list(payments.owners.values_list("email", flat=True)) == ["owner@example.com"]
        assert User.objects.get(email="developer@example.com").display_name == "Dana W."
        assert dict(TOTPDevice.objects.values_list("user__email", "encrypted_key")) == keys
        assert Entitlement.objects.filter(**vault_admin).exists()
        assert "Created this run: 1 entitlement." in output

    def test_refused_in_production_unless_forced(self, settings: Settings) -> None:
        settings.PRODUCTION = True
        # The two prod-pci entitlements no demo request refers to.
        Entitlement.objects.filter(environment__slug="prod-pci", requests__isnull=True).delete()
        before = row_counts()

        with pytest.raises(CommandError, match="production.*--force"):
            seed()
        assert row_counts() == before
        assert AuditEvent.objects.filter(action="demo.seeded").count() == 1

        output = seed("--force")
        assert "Created this run: 2 entitlements." in output
        assert AuditEvent.objects.filter(action="demo.seeded").count() == 2


def test_persona_lines_before_seeding_say_how_to_load_them() -> None:
    assert persona_lines() == [
        "  No demo personas yet: run `python manage.py seed_demo` to load them."
    ]


def test_demo_workflow_gives_each_persona_something_to_do() -> None:
    from accessreq.models import AccessRequest, Grant
    from accessreq.selectors import holds_scope, inbox
    from accessreq.services.common import now

    seed("--no-personas")
    seed("--no-personas")  # the workflow step runs once
    assert AccessRequest.objects.count() == 5
    manager = User.objects.get(email="manager@example.com")
    developer = User.objects.get(email="developer@example.com")
    assert inbox(user=manager, at=now()).count() == 3
    assert holds_scope(user=developer, scope="deploy", system="payments-service", environment="dev")
    revoked = Grant.objects.get(beneficiary=developer, state="revoked")
    assert revoked.revoked_by is not None and revoked.revoked_by.email == "owner@example.com"
    assert developer.in_group(ON_CALL)
    # A quarterly review with its beat schedule, and its first campaign, launched once.
    from accessreq.models import Campaign, CampaignTemplate, ReviewItem

    template = CampaignTemplate.objects.get(name="Quarterly access review")
    assert template.periodic_task is not None and template.periodic_task.enabled
    assert Campaign.objects.filter(template=template).count() == 1
    assert ReviewItem.objects.filter(reviewer=manager).exists()


@pytest.mark.django_db
def test_personas_get_backup_codes_that_sign_them_in(
    settings: Settings, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    settings.VAR_DIR = tmp_path
    with django_capture_on_commit_callbacks(execute=True):
        seed()
    codes_file = tmp_path / "demo-backup-codes.txt"
    assert oct(codes_file.stat().st_mode)[-3:] == "600"
    text = codes_file.read_text()
    assert persona_lines()[-1].endswith(str(codes_file))
    blocks = {b.split("\n")[0]: b.split() for b in text.split("\n\n")[1:]}
    assert set(blocks) == set(PERSONA_EMAILS)
    developer_codes = blocks["developer@example.com"][1:]
    assert len(developer_codes) == settings.MFA_BACKUP_CODE_COUNT

    client = Client()
    client.post("/accounts/login/", {"login": "developer@example.com", "password": DEMO_PASSWORD})
    assert client.post("/mfa/verify/", {"code": developer_codes[0]}).status_code == 302
    home = client.get("/").content.decode()
    assert "You used a backup code; 9 left." in home
    assert "You have no backup codes" not in home and "backup codes left" not in home

    with django_capture_on_commit_callbacks(execute=True):
        seed()
    assert codes_file.read_text() == text  # a second run issues none
