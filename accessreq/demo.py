"""Demo workflow data: requests in every state, so each persona has something to look at.

Loaded once, by ``manage.py seed_demo`` after the organisation exists: if any access request is
already on record the step is skipped, so a re-run never adds a second set. Everything goes
through the real services, so the ledger and history read exactly as if people had done it.
DEMO ONLY, like the rest of the demo data.
"""

from __future__ import annotations

from datetime import timedelta

from accessreq.models import (
    AccessRequest,
    ConflictRule,
    Connector,
    ConnectorKind,
    Entitlement,
)
from accessreq.services.grants import grant_revoke
from accessreq.services.requests import request_approve, request_submit
from portal.history import acting_as
from portal.models import User


def _entitlement(system: str, environment: str, slug: str) -> Entitlement | None:
    return (
        Entitlement.objects.select_related("system", "environment")
        .filter(system__slug=system, environment__slug=environment, slug=slug)
        .first()
    )


def _person(email: str) -> User | None:
    return User.objects.filter(email=email).first()


def demo_workflow() -> int:
    """Create the demo requests, a connector and a conflict rule; returns requests created."""
    if AccessRequest.objects.exists():
        return 0
    dana = _person("developer@example.com")
    marcus = _person("manager@example.com")
    olivia = _person("owner@example.com")
    amara = _person("amara.nwosu@example.com")
    ravi = _person("ravi.shankar@example.com")
    tobias = _person("tobias.reinholt@example.com")
    if not all((dana, marcus, olivia, amara, ravi, tobias)):
        return 0
    assert dana and marcus and olivia and amara and ravi and tobias

    connector, _ = Connector.objects.get_or_create(
        name="Platform team task list", defaults={"kind": ConnectorKind.MANUAL}
    )
    for entitlement in Entitlement.objects.filter(
        environment__slug="prod-pci", connector__isnull=True
    ):
        entitlement.connector = connector
        entitlement.save()  # one by one, so each change has its history row
    ledger_deployer = _entitlement("ledger-api", "prod", "deployer")
    ledger_repair = _entitlement("ledger-api", "prod-pci", "data-repair")
    if ledger_deployer and ledger_repair:
        ConflictRule.objects.get_or_create(
            first=ledger_deployer,
            second=ledger_repair,
            defaults={
                "reason": "Whoever deploys ledger code must not also change ledger data by hand."
            },
        )

    created = 0

    def submit(
        person: User,
        entitlement: Entitlement | None,
        why: str,
        *,
        duration: timedelta,
        ticket: str = "",
    ) -> int | None:
        nonlocal created
        if entitlement is None:
            return None
        with acting_as(person):
            access_request = request_submit(
                actor=person,
                entitlement=entitlement,
                justification=why,
                duration=duration,
                ticket=ticket,
            )
        created += 1
        return access_request.pk

    # Waiting for Marcus (manager) or the payments-service owners.
    submit(
        amara,
        _entitlement("payments-service", "staging", "deployer"),
        "Release the refund-retry change to staging for the QA sign-off.",
        duration=timedelta(days=1),
    )
    submit(
        ravi,
        _entitlement("payments-service", "prod", "log-reader"),
        "Investigate the 502s on /payouts reported in INC-2291.",
        duration=timedelta(hours=8),
        ticket="INC-2291",
    )
    submit(
        tobias,
        _entitlement("payments-service", "prod-pci", "secrets-reader"),
        "Rotate the card-network API key before it expires on Friday.",
        duration=timedelta(hours=1),
        ticket="SEC-118",
    )
    # Dana holds dev access, approved by Marcus.
    held = submit(
        dana,
        _entitlement("payments-service", "dev", "developer"),
        "Build and test the new payout batching in dev.",
        duration=timedelta(days=7),
    )
    if held:
        with acting_as(marcus):
            request_approve(actor=marcus, request_id=held, comment="Go ahead.")
    # ...and had staging access that Olivia revoked.
    revoked = submit(
        dana,
        _entitlement("ledger-api", "staging", "deployer"),
        "Try the ledger schema migration on staging data.",
        duration=timedelta(days=1),
    )
    if revoked:
        with acting_as(olivia):
            request_approve(actor=olivia, request_id=revoked, comment="Fine for a day.")
        access_request = AccessRequest.objects.get(pk=revoked)
        if access_request.grant_id:
            with acting_as(olivia):
                grant_revoke(
                    actor=olivia,
                    grant_id=access_request.grant_id,
                    reason="Migration tested; staging is frozen for the release.",
                )
    return created


def demo_campaigns() -> int:
    """A quarterly review template (scheduled with beat) and its first campaign, so managers have
    something in Reviews; returns campaigns launched (0 when one exists already)."""
    from accessreq.models import Campaign, CampaignTemplate
    from accessreq.services.campaigns import campaign_launch, template_schedule_sync

    security = _person("security@example.com")
    if security is None:
        return 0
    template, created = CampaignTemplate.objects.get_or_create(
        name="Quarterly access review",
        defaults={
            "description": "Every active grant, reviewed by the holder's manager each quarter.",
            "fallback_reviewer": security,
            "owner": security,
        },
    )
    if created:
        template_schedule_sync(template)
    if Campaign.objects.exists():
        return 0
    system = User.objects.system_actor()
    with acting_as(system):
        campaign_launch(template_id=template.pk, actor=system)
    return 1
