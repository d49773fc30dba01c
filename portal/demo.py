"""Demo data: a believable software-delivery organisation and five personas who can sign in.

DEMO ONLY. Every persona's password is ``gatehouse-demo`` and their authenticator secrets are
printed on the console, so anyone who has seen this file can sign in as them. Never load this
data into a deployment that guards real access; ``manage.py seed_demo`` refuses to when
``settings.PRODUCTION`` is true unless forced.

``demo_seed`` is idempotent: every row is looked up by its natural key (email, slug, or system +
environment + slug) and created only when missing. Nothing that exists is changed, so edits made
in the portal survive a re-run, and a deleted row comes back.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from accessreq.models import Entitlement, Environment, RiskTier, Scope, System
from audit.services import record
from portal.crypto import code_digests
from portal.history import acting_as
from portal.models import BackupCode, BackupCodeDevice, Team, TOTPDevice, User
from portal.models.mfa import new_backup_code, normalize_backup_code
from portal.roles import AUDITOR, ON_CALL, SECURITY_ADMIN, ensure_groups

DEMO_PASSWORD = "gatehouse-demo"  # noqa: S105 - published on purpose: demo personas only


@dataclass(frozen=True)
class Persona:
    """A demo account with a known password and a pre-enrolled authenticator."""

    role: str
    email: str
    display_name: str
    groups: tuple[str, ...] = ()
    is_staff: bool = False


PERSONAS = (
    Persona("developer", "developer@example.com", "Dana Whitfield", (ON_CALL,)),
    Persona("manager", "manager@example.com", "Marcus Chen"),
    Persona("system owner", "owner@example.com", "Olivia Brandt"),
    Persona(
        "security admin", "security@example.com", "Samir Haddad", (SECURITY_ADMIN,), is_staff=True
    ),
    Persona("auditor", "auditor@example.com", "Aisha Okafor", (AUDITOR,)),
)
_PERSONA_BY_EMAIL = {p.email: p for p in PERSONAS}
_PERSONA_BY_NAME = {p.display_name: p for p in PERSONAS}

TEAMS = (
    ("leadership", "Leadership", "The CTO and the directors of engineering and security."),
    ("payments", "Payments", "Card payments, payouts and the double-entry ledger."),
    ("identity", "Identity", "Sign-in, single sign-on and customer identity."),
    ("mobile", "Mobile", "The iOS and Android apps and the API behind them."),
    ("platform", "Platform", "Kubernetes, CI, secrets and observability for every team."),
    ("data", "Data", "The data warehouse, pipelines and reporting."),
    ("security", "Security", "Application and infrastructure security, incident response."),
    ("risk-compliance", "Risk & Compliance", "Internal audit, PCI DSS and SOC 2 evidence."),
)

# (name, team slug, manager's name), managers before their reports. Emails are
# first.last@example.com, except the personas'.
PEOPLE = (
    ("Helena Marsh", "leadership", None),  # CTO
    ("Rafael Ortiz", "leadership", "Helena Marsh"),  # Director of Engineering, Product
    ("Priya Raman", "leadership", "Helena Marsh"),  # Director of Engineering, Infrastructure
    ("Ingrid Solberg", "leadership", "Helena Marsh"),  # CISO
    # Team leads
    ("Marcus Chen", "payments", "Rafael Ortiz"),
    ("Kenji Watanabe", "identity", "Rafael Ortiz"),
    ("Lucia Ferreira", "mobile", "Rafael Ortiz"),
    ("Ben Adeyemi", "platform", "Priya Raman"),
    ("Hannah Kowalski", "data", "Priya Raman"),
    ("Noor Rahman", "security", "Ingrid Solberg"),
    ("Gareth Pryce", "risk-compliance", "Ingrid Solberg"),
    # Engineers and analysts
    ("Dana Whitfield", "payments", "Marcus Chen"),
    ("Olivia Brandt", "payments", "Marcus Chen"),
    ("Tobias Reinholt", "payments", "Marcus Chen"),
    ("Amara Nwosu", "payments", "Marcus Chen"),
    ("Ravi Shankar", "payments", "Marcus Chen"),
    ("Liam O'Connor", "payments", "Marcus Chen"),
    ("Sofia Marchetti", "identity", "Kenji Watanabe"),
    ("Daniel Kim", "identity", "Kenji Watanabe"),
    ("Fatima Zahra", "identity", "Kenji Watanabe"),
    ("Ethan Brooks", "mobile", "Lucia Ferreira"),
    ("Mei Tanaka", "mobile", "Lucia Ferreira"),
    ("Jonas Berg", "mobile", "Lucia Ferreira"),
    ("Grace Liu", "platform", "Ben Adeyemi"),
    ("Mateo Silva", "platform", "Ben Adeyemi"),
    ("Chloé Dubois", "platform", "Ben Adeyemi"),
    ("Arjun Mehta", "platform", "Ben Adeyemi"),
    ("Zoe Hartmann", "platform", "Ben Adeyemi"),
    ("Oscar Lindgren", "data", "Hannah Kowalski"),
    ("Nadia Petrova", "data", "Hannah Kowalski"),
    ("Yusuf Demir", "data", "Hannah Kowalski"),
    ("Samir Haddad", "security", "Noor Rahman"),
    ("Elena Vasquez", "security", "Noor Rahman"),
    ("Aisha Okafor", "risk-compliance", "Gareth Pryce"),
)
LEAVING = {"Liam O'Connor", "Jonas Berg"}


def demo_email(name: str) -> str:
    """The email address of a demo person: the persona's, or ``first.last@example.com``."""
    persona = _PERSONA_BY_NAME.get(name)
    if persona:
        return persona.email
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    local = ".".join("".join(ch for ch in part if ch.isalnum()) for part in ascii_name.split())
    return f"{local.lower()}@example.com"


SCOPES = (
    ("deploy", "Deploy a new version"),
    ("rollback", "Roll back to an earlier version"),
    ("read-logs", "Read application logs"),
    ("read-secrets", "Read secrets"),
    ("write-secrets", "Create, change and rotate secrets"),
    ("db-read", "Run read-only queries against the database"),
    ("db-write", "Change data in the database"),
    ("toggle-flags", "Turn feature flags on and off"),
    ("admin", "Administer the system: configuration, users and policies"),
)

# (slug, risk tier); prod-pci is the cardholder-data environment (PCI DSS scope).
ENVIRONMENTS = (
    ("dev", RiskTier.LOW),
    ("staging", RiskTier.MEDIUM),
    ("prod", RiskTier.HIGH),
    ("prod-pci", RiskTier.CRITICAL),
)
_TICKET_ENVIRONMENTS = {"prod", "prod-pci"}
# Pipelines need an approved deployment of the exact commit to deploy there.
_DEPLOYMENT_APPROVAL_ENVIRONMENTS = {"prod", "prod-pci"}
# (name, owners): service accounts for the Pipelines pages, e.g. payments-service's release
# pipeline. They hold nothing until an owner requests access for them, as in a real rollout.
SERVICE_ACCOUNTS = (("payments-deployer", ("Olivia Brandt", "Tobias Reinholt")),)


@dataclass(frozen=True)
class EntitlementSpec:
    environment: str
    slug: str
    name: str
    scopes: tuple[str, ...]
    max_duration: timedelta


def _e(environment: str, slug: str, name: str, scopes: str, **duration: int) -> EntitlementSpec:
    return EntitlementSpec(environment, slug, name, tuple(scopes.split()), timedelta(**duration))


@dataclass(frozen=True)
class SystemSpec:
    slug: str
    criticality: str
    description: str
    owners: tuple[str, ...]  # names from PEOPLE
    entitlements: tuple[EntitlementSpec, ...]


# Grants last weeks in dev, days in staging and hours in production; admin rights the least.
SYSTEMS = (
    SystemSpec(
        "payments-service",
        RiskTier.CRITICAL,
        "Takes card payments and payouts; talks to the card networks.",
        ("Olivia Brandt", "Tobias Reinholt"),
        (
            _e("dev", "developer", "Developer", "deploy rollback read-logs db-read", days=30),
            _e("staging", "deployer", "Deployer", "deploy rollback read-logs", days=14),
            _e("prod", "deployer", "Deployer", "deploy rollback", hours=8),
            _e("prod", "log-reader", "Log reader", "read-logs", hours=24),
            _e("prod", "db-reader", "Database reader", "db-read", hours=4),
            _e("prod-pci", "deployer", "Deployer", "deploy rollback", hours=4),
            _e("prod-pci", "secrets-reader", "Secrets reader", "read-secrets", hours=1),
        ),
    ),
    SystemSpec(
        "ledger-api",
        RiskTier.CRITICAL,
        "The double-entry ledger every payment and payout is booked in.",
        ("Olivia Brandt", "Amara Nwosu"),
        (
            _e("dev", "developer", "Developer", "deploy read-logs db-read db-write", days=30),
            _e("staging", "deployer", "Deployer", "deploy rollback read-logs", days=14),
            _e("prod", "deployer", "Deployer", "deploy rollback", hours=8),
            _e("prod", "db-reader", "Database reader", "db-read", hours=4),
            _e("prod-pci", "data-repair", "Data repair", "db-read db-write", hours=1),
        ),
    ),
    SystemSpec(
        "vault",
        RiskTier.CRITICAL,
        "HashiCorp Vault: secrets, database credentials and encryption keys for every service.",
        ("Noor Rahman", "Grace Liu"),
        (
            _e("dev", "secrets-reader", "Secrets reader", "read-secrets", days=30),
            _e("dev", "secrets-writer", "Secrets writer", "read-secrets write-secrets", days=30),
            _e("staging", "secrets-reader", "Secrets reader", "read-secrets", days=14),
            _e("staging", "secrets-writer", "Secrets writer", "read-secrets write-secrets", days=7),
            _e("prod", "secrets-reader", "Secrets reader", "read-secrets", hours=4),
            _e("prod", "secrets-writer", "Secrets writer", "read-secrets write-secrets", hours=2),
            _e("prod", "administrator", "Administrator", "admin", hours=1),
        ),
    ),
    SystemSpec(
        "k8s-platform",
        RiskTier.HIGH,
        "The Kubernetes clusters every service runs on.",
        ("Ben Adeyemi", "Mateo Silva"),
        (
            _e(
                "dev",
                "namespace-admin",
                "Namespace admin",
                "deploy rollback read-logs admin",
                days=30,
            ),
            _e("staging", "deployer", "Deployer", "deploy rollback read-logs", days=14),
            _e("prod", "deployer", "Deployer", "deploy rollback", hours=8),
            _e("prod", "log-reader", "Log reader", "read-logs", hours=24),
            _e("prod", "cluster-admin", "Cluster admin", "admin", hours=1),
        ),
    ),
    SystemSpec(
        "ci-runners",
        RiskTier.MEDIUM,
        "The build and deploy runners behind every pipeline.",
        ("Chloé Dubois", "Arjun Mehta"),
        (
            _e("dev", "runner-admin", "Runner admin", "admin read-logs", days=30),
            _e("staging", "runner-admin", "Runner admin", "admin read-logs", days=14),
            _e("prod", "runner-admin", "Runner admin", "admin", hours=8),
            _e("prod", "log-reader", "Log reader", "read-logs", days=3),
        ),
    ),
    SystemSpec(
        "identity-provider",
        RiskTier.CRITICAL,
        "Customer and staff sign-in: OpenID Connect, SAML and MFA.",
        ("Kenji Watanabe", "Sofia Marchetti"),
        (
            _e("dev", "developer", "Developer", "deploy read-logs admin", days=30),
            _e("staging", "deployer", "Deployer", "deploy rollback read-logs", days=14),
            _e("prod", "deployer", "Deployer", "deploy rollback", hours=8),
            _e("prod", "log-reader", "Log reader", "read-logs", hours=24),
            _e("prod", "administrator", "Administrator", "admin", hours=1),
        ),
    ),
    SystemSpec(
        "data-warehouse",
        RiskTier.HIGH,
        "The analytics warehouse; holds pseudonymised customer and payment data.",
        ("Hannah Kowalski", "Oscar Lindgren"),
        (
            _e("dev", "analyst", "Analyst", "db-read db-write", days=30),
            _e("staging", "analyst", "Analyst", "db-read", days=14),
            _e("prod", "analyst", "Analyst", "db-read", days=3),
            _e("prod", "data-engineer", "Data engineer", "db-read db-write", hours=8),
            _e("prod", "administrator", "Administrator", "admin", hours=2),
        ),
    ),
    SystemSpec(
        "mobile-backend",
        RiskTier.MEDIUM,
        "The API behind the iOS and Android apps.",
        ("Lucia Ferreira", "Ethan Brooks"),
        (
            _e("dev", "developer", "Developer", "deploy rollback read-logs db-read", days=30),
            _e("staging", "deployer", "Deployer", "deploy rollback read-logs", days=14),
            _e("prod", "deployer", "Deployer", "deploy rollback", hours=8),
            _e("prod", "log-reader", "Log reader", "read-logs", hours=24),
        ),
    ),
    SystemSpec(
        "observability",
        RiskTier.MEDIUM,
        "Metrics, traces and logs for every service (Grafana, Prometheus, Loki).",
        ("Zoe Hartmann", "Arjun Mehta"),
        (
            _e("dev", "viewer", "Viewer", "read-logs", days=30),
            _e("staging", "viewer", "Viewer", "read-logs", days=30),
            _e("prod", "viewer", "Viewer", "read-logs", days=7),
            _e("prod", "administrator", "Administrator", "admin", hours=4),
        ),
    ),
    SystemSpec(
        "feature-flags",
        RiskTier.MEDIUM,
        "Feature flags and gradual roll-outs for the web and mobile apps.",
        ("Olivia Brandt", "Lucia Ferreira"),
        (
            _e("dev", "flag-editor", "Flag editor", "toggle-flags", days=30),
            _e("staging", "flag-editor", "Flag editor", "toggle-flags", days=14),
            _e("prod", "flag-editor", "Flag editor", "toggle-flags", hours=8),
            _e("prod", "administrator", "Administrator", "admin", hours=2),
        ),
    ),
)

COUNTED = (
    "teams",
    "people",
    "scopes",
    "environments",
    "systems",
    "entitlements",
    "service accounts",
    "authenticators",
)


@dataclass
class SeedResult:
    """What one run created, and how many demo-relevant rows exist afterwards."""

    created: dict[str, int]
    totals: dict[str, int]


def _totals() -> dict[str, int]:
    return {
        "teams": Team.objects.count(),
        "people": User.objects.humans().count(),
        "scopes": Scope.objects.count(),
        "environments": Environment.objects.count(),
        "systems": System.objects.count(),
        "entitlements": Entitlement.objects.count(),
        "service accounts": User.objects.filter(kind=User.Kind.SERVICE).count(),
        "authenticators": TOTPDevice.objects.filter(
            user__email__in=_PERSONA_BY_EMAIL, confirmed=True
        ).count(),
    }


def _entitlement_description(spec: EntitlementSpec, system: str, scopes: dict[str, Scope]) -> str:
    actions = "; ".join(scopes[slug].description.lower() for slug in spec.scopes)
    return f"{spec.name} on {system} in {spec.environment}: {actions}."


@transaction.atomic
def demo_seed(*, actor: User) -> SeedResult:
    """Create whatever part of the demo organisation is missing, attributed to ``actor``.

    Writes one ``demo.seeded`` audit event with the counts, in the same transaction.
    """
    created = dict.fromkeys(COUNTED, 0)
    with acting_as(actor):
        ensure_groups()
        teams: dict[str, Team] = {}
        for slug, name, description in TEAMS:
            teams[slug], new = Team.objects.get_or_create(
                slug=slug, defaults={"name": name, "description": description}
            )
            created["teams"] += new

        people: dict[str, User] = {}  # by name
        for name, team_slug, manager_name in PEOPLE:
            persona = _PERSONA_BY_NAME.get(name)
            # Scenery people get an unusable password: only the personas can sign in.
            password = DEMO_PASSWORD if persona else None
            status = (
                User.EmploymentStatus.LEAVING if name in LEAVING else User.EmploymentStatus.ACTIVE
            )
            people[name], new = User.objects.get_or_create(
                email=demo_email(name),
                defaults={
                    "display_name": name,
                    "team": teams[team_slug],
                    "manager": people[manager_name] if manager_name else None,
                    "employment_status": status,
                    "is_staff": bool(persona and persona.is_staff),
                    # A callable, so the slow hash is computed only for new rows.
                    "password": lambda password=password: make_password(password),
                },
            )
            created["people"] += new
            if new and persona and persona.groups:
                people[name].groups.add(*Group.objects.filter(name__in=persona.groups))

        scopes: dict[str, Scope] = {}
        for slug, description in SCOPES:
            scopes[slug], new = Scope.objects.get_or_create(
                slug=slug, defaults={"description": description}
            )
            created["scopes"] += new

        environments: dict[str, Environment] = {}
        for slug, tier in ENVIRONMENTS:
            environments[slug], new = Environment.objects.get_or_create(
                slug=slug,
                defaults={
                    "name": slug,
                    "risk_tier": tier,
                    "requires_deployment_approval": slug in _DEPLOYMENT_APPROVAL_ENVIRONMENTS,
                },
            )
            created["environments"] += new

        for spec in SYSTEMS:
            owners = [people[name] for name in spec.owners]
            system, new = System.objects.get_or_create(
                slug=spec.slug,
                defaults={
                    "name": spec.slug,
                    "description": spec.description,
                    "criticality": spec.criticality,
                },
            )
            created["systems"] += new
            if new:
                system.owners.add(*owners)
            for ent in spec.entitlements:
                entitlement, new = Entitlement.objects.get_or_create(
                    system=system,
                    environment=environments[ent.environment],
                    slug=ent.slug,
                    defaults={
                        "name": ent.name,
                        "description": _entitlement_description(ent, spec.slug, scopes),
                        "max_duration": ent.max_duration,
                        "ticket_required": ent.environment in _TICKET_ENVIRONMENTS,
                        # On-call engineers may deploy a fix to production in an incident.
                        "emergency_capable": ent.slug == "deployer"
                        and ent.environment in _TICKET_ENVIRONMENTS,
                    },
                )
                created["entitlements"] += new
                if new:
                    entitlement.scopes.add(*(scopes[slug] for slug in ent.scopes))
                    entitlement.owners.add(*owners)

        for name, owner_names in SERVICE_ACCOUNTS:
            account, new = User.objects.get_or_create(
                email=f"{name}@service.invalid",
                defaults={
                    "display_name": name,
                    "kind": User.Kind.SERVICE,
                    "password": make_password(None),  # unusable: it never signs in
                },
            )
            created["service accounts"] += new
            if new:
                account.owners.add(*(people[owner] for owner in owner_names))

        issued: dict[str, list[str]] = {}
        for persona in PERSONAS:
            user = people[persona.display_name]
            if not TOTPDevice.objects.filter(user=user, confirmed=True).exists():
                device = TOTPDevice.new_for(user)
                device.confirmed = True
                device.confirmed_at = timezone.now()
                device.save()
                created["authenticators"] += 1
            if not BackupCodeDevice.objects.filter(user=user).exists():
                issued[user.email] = _issue_backup_codes(user)
        if issued:
            # Written only once the codes are really stored; they are shown nowhere else.
            transaction.on_commit(lambda: _write_backup_codes(issued))

    totals = _totals()
    record(
        actor=actor,
        action="demo.seeded",
        data={"created": created, "totals": totals},
    )
    return SeedResult(created=created, totals=totals)


def backup_codes_file() -> Path:
    """Where the demo personas' backup codes are written in clear (DEMO ONLY), once each."""
    return Path(settings.VAR_DIR) / "demo-backup-codes.txt"


def _issue_backup_codes(user: User) -> list[str]:
    """A set of backup codes as enrolment issues them; the clear codes are returned once."""
    device = BackupCodeDevice.objects.create(user=user, name="Backup codes", confirmed=True)
    codes = [new_backup_code() for _ in range(settings.MFA_BACKUP_CODE_COUNT)]
    BackupCode.objects.bulk_create(
        BackupCode(device=device, digest=code_digests(normalize_backup_code(code))[0])
        for code in codes
    )
    return codes


def _write_backup_codes(issued: dict[str, list[str]]) -> None:
    path = backup_codes_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    with open(path, "a", encoding="utf-8") as handle:
        path.chmod(0o600)
        if new:
            handle.write(
                "# DEMO ONLY: one-time backup codes of the demo personas. Each signs in once, in\n"
                "# place of an authenticator code. A new set (Sign-in security) replaces them.\n"
            )
        for email, codes in issued.items():
            handle.write(f"\n{email}\n" + "".join(f"  {code}\n" for code in codes))


def persona_lines() -> list[str]:
    """Two lines per demo persona: role, name, email and password; TOTP secret and how to get
    the current code. A single hint line if the demo data has not been loaded."""
    users = {
        u.email: u for u in User.objects.filter(email__in=_PERSONA_BY_EMAIL).select_related("team")
    }
    devices = {
        d.user_id: d for d in TOTPDevice.objects.filter(user__in=users.values(), confirmed=True)
    }
    if not users:
        return ["  No demo personas yet: run `python manage.py seed_demo` to load them."]
    lines = []
    for persona in PERSONAS:
        user = users.get(persona.email)
        if user is None:
            continue
        team = f", {user.team.name}" if user.team else ""
        lines.append(
            f"  {persona.role:<15} {user.email:<22} password: {DEMO_PASSWORD}"
            f"   ({user.display_name}{team})"
        )
        device = devices.get(user.pk)
        if device is None:
            totp_key = "(no authenticator enrolled; run seed_demo again)"
        else:
            try:
                totp_key = device.base32_key
            except ValueError:
                totp_key = "(unreadable: FIELD_ENCRYPTION_KEYS changed since seeding)"
        lines.append(
            f"      TOTP secret: {totp_key}   current code: "
            f".venv/bin/python manage.py totp {user.email}"
        )
    codes = backup_codes_file()
    if codes.exists():
        lines.append(f"  Backup codes (each signs in once instead of a code): {codes}")
    return lines
