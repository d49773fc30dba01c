"""``manage.py report_export REPORT [--format csv] [--param NAME=VALUE ...] [--as EMAIL] -o F``."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accessreq.errors import NotAllowed
from accessreq.reports.base import all_reports
from accessreq.reports.writers import FORMATS
from audit.export import ExportError


def _param(value: str) -> tuple[str, str]:
    name, sep, text = value.partition("=")
    if not sep or not name:
        raise CommandError(f"--param {value!r}: write it as NAME=VALUE, e.g. since=2026-01-01")
    return name, text


class Command(BaseCommand):
    help = (
        "Write a report as a signed evidence bundle (the same bundle as the report page's "
        "export), whatever its size, and record the export in the audit log."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("report", help="The report's slug, as in its address /reports/SLUG/.")
        parser.add_argument("--format", choices=FORMATS, default="csv")
        parser.add_argument(
            "--param",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="A filter as on the report page (since, until, as_of, system, tier, ...).",
        )
        parser.add_argument(
            "--as",
            dest="actor",
            metavar="EMAIL",
            help="Export as this auditor or security admin (default: the system actor).",
        )
        parser.add_argument("-o", "--output", required=True, type=Path, help="The .zip to write.")

    def handle(self, *args: Any, **options: Any) -> None:
        from accessreq.services.common import now
        from accessreq.services.reports import build_report, report_export_to
        from portal.models import User
        from portal.roles import can_read_audit

        slugs = [report.slug for report in all_reports()]
        if options["report"] not in slugs:
            raise CommandError(
                f"No report {options['report']!r}; choose one of {', '.join(slugs)}."
            )
        if options["actor"]:
            actor = User.objects.filter(email__iexact=options["actor"]).first()
            if actor is None or not can_read_audit(actor):
                raise CommandError(f"{options['actor']} is not an auditor or security admin.")
        else:
            actor = User.objects.system_actor()
        query = dict(_param(value) for value in options["param"])
        try:
            report = build_report(options["report"], query, at=now())
        except NotAllowed as exc:
            raise CommandError(str(exc)) from None
        output: Path = options["output"]
        partial = output.with_name(f".{output.name}.partial")
        started = time.monotonic()
        try:
            with partial.open("w+b") as handle:
                result = report_export_to(
                    report, options["format"], handle, actor=actor, delivery="command"
                )
        except (NotAllowed, ExportError) as exc:
            partial.unlink(missing_ok=True)
            raise CommandError(str(exc)) from None
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        os.replace(partial, output)
        seconds = time.monotonic() - started
        self.stdout.write(
            f"Wrote {output}: {result.event.data['rows']} rows of {report.title!r} as "
            f"{options['format'].upper()}; SHA-256 {result.sha256}; {seconds:.1f}s."
        )
