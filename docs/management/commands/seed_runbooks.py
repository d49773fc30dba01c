"""``manage.py seed_runbooks``: load the runbooks shipped in ``docs/runbooks/`` into the database.

Idempotent: creates what is missing, updates runbooks nobody edited in the portal whose file
changed, and never overwrites a portal edit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from docs.services import RunbookFileError, runbook_seed

DEFAULT_DIRECTORY = Path(settings.BASE_DIR) / "docs" / "runbooks"


class Command(BaseCommand):
    help = (
        "Create or update runbooks from docs/runbooks/*.md. Never overwrites a runbook edited in "
        "the portal. Safe to run any number of times; a malformed file changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--directory",
            type=Path,
            default=DEFAULT_DIRECTORY,
            help=f"Where the runbook files are (default: {DEFAULT_DIRECTORY}).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        directory: Path = options["directory"]
        try:
            report = runbook_seed(directory=directory)
        except RunbookFileError as error:
            raise CommandError(f"No runbook was changed. {error}") from None
        for slug in report.created:
            self.stdout.write(f"  created           {slug}")
        for slug in report.updated:
            self.stdout.write(f"  updated from file {slug}")
        for slug, file_changed in report.kept_portal_edit:
            note = " (its file changed too: compare them by hand)" if file_changed else ""
            self.stdout.write(f"  kept portal edit  {slug}{note}")
        counts = ", ".join(f"{number} {label}" for label, number in report.counts.items())
        total = sum(report.counts.values())
        if total == 0:
            self.stdout.write(f"No runbook files in {directory}.")
            return
        self.stdout.write(self.style.SUCCESS(f"Runbooks: {counts}."))
