"""``manage.py seed_demo``: load the demo organisation and print how to sign in as each persona.

DEMO ONLY: the personas' password (``gatehouse-demo``) and authenticator secrets are public.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from accessreq.demo import demo_campaigns, demo_workflow
from portal.demo import COUNTED, demo_seed, persona_lines
from portal.models import User

_SINGULAR = {"people": "person"}


def _count(number: int, kind: str) -> str:
    """``3 teams``, ``1 team``, ``1 person``."""
    if number == 1:
        kind = _SINGULAR.get(kind, kind.removesuffix("s"))
    return f"{number} {kind}"


class Command(BaseCommand):
    help = (
        "Load demo data (teams, people, systems, environments, entitlements) and five personas "
        "with a public password and authenticator. Safe to run again: it only adds what is "
        "missing. Refused in production unless --force."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--force",
            action="store_true",
            help="Seed even though settings.PRODUCTION is true (the personas' password is public).",
        )
        parser.add_argument(
            "--no-personas",
            action="store_true",
            help="Don't print the personas (make run prints them once the server is up).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION and not options["force"]:
            raise CommandError(
                "Refusing to load demo data: this is a production deployment "
                "(GATEHOUSE_ENV=production). The demo personas have a published password and "
                "authenticator secrets. Pass --force only if this database holds no real access."
            )
        with transaction.atomic():
            result = demo_seed(actor=User.objects.system_actor())
            requests = demo_workflow()
            campaigns = demo_campaigns()

        totals = ", ".join(_count(result.totals[kind], kind) for kind in COUNTED)
        made = [_count(result.created[kind], kind) for kind in COUNTED if result.created[kind]]
        self.stdout.write(f"Demo data ready: {totals}.")
        if requests:
            made.append(_count(requests, "access requests"))
        if campaigns:
            made.append(_count(campaigns, "review campaigns"))
        if made:
            self.stdout.write(self.style.SUCCESS(f"Created this run: {', '.join(made)}."))
        else:
            self.stdout.write("Nothing was missing, so nothing was added.")
        if options["no_personas"]:
            return
        self.stdout.write("")
        self.stdout.write(
            "Demo personas (DEMO ONLY: this password and these authenticator secrets are public):"
        )
        for line in persona_lines():
            self.stdout.write(line)
