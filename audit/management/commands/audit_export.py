"""``manage.py audit_export [--action CODE] [--since ISO] [--until ISO] -o bundle.zip``."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.export import ExportError, events_for_export, evidence_export


def _iso_time(value: str) -> datetime:
    """An ISO 8601 date or time; without an offset it is read as UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not an ISO 8601 date or time.") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = "Write an evidence bundle of audit events (the same bundle as the export page)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--action",
            default="",
            help="An action code, or a family ending in a dot (auth. for every auth.* code).",
        )
        parser.add_argument("--since", type=_iso_time, help="Events at or after this time.")
        parser.add_argument("--until", type=_iso_time, help="Events before this time.")
        parser.add_argument("-o", "--output", required=True, type=Path, help="The .zip to write.")

    def handle(self, *args: Any, **options: Any) -> None:
        from portal.models import User

        filters = {
            "action": options["action"],
            "since": options["since"],
            "until": options["until"],
        }
        output: Path = options["output"]
        # Written beside the target and renamed at the end: no half-written bundle under its name.
        partial = output.with_name(f".{output.name}.partial")
        started = time.monotonic()
        try:
            with partial.open("w+b") as handle:
                result = evidence_export(
                    events=events_for_export(**filters),
                    fileobj=handle,
                    actor=User.objects.system_actor(),
                    filters=filters,
                )
        except ExportError as exc:
            partial.unlink(missing_ok=True)
            raise CommandError(str(exc)) from None
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        os.replace(partial, output)
        seconds = time.monotonic() - started
        info = result.bundle
        self.stdout.write(
            f"Wrote {output}: {info.event_count} events, covered by the checkpoint of "
            f"{info.tree_size} events; SHA-256 {result.bundle_sha256}; {seconds:.1f}s."
        )
