"""``manage.py audit verify|checkpoint|rotate-key``: ledger operations from the command line."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from audit.anchors import AnchorError
from audit.checkpoints import checkpoint_sign, key_rotate
from audit.verify import VerifyResult, ledger_verify_and_alert


def _system() -> Any:
    from portal.models import User

    return User.objects.system_actor()


class Command(BaseCommand):
    help = "Verify the audit ledger, sign a checkpoint now, or rotate the signing key."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        sub.add_parser("verify", help="Recompute every hash, link, checkpoint and signature.")
        sub.add_parser("checkpoint", help="Sign a checkpoint over all events now.")
        sub.add_parser(
            "rotate-key", help="Replace the signing key; old public keys stay published."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "verify":
            self._verify()
        elif action == "checkpoint":
            try:
                checkpoint = checkpoint_sign(actor=_system())
            except AnchorError as exc:
                raise CommandError(str(exc)) from None
            if checkpoint is None:
                self.stdout.write("Nothing new to sign: the newest checkpoint covers every event.")
            else:
                self.stdout.write(
                    f"Signed checkpoint of {checkpoint.tree_size} events, root "
                    f"{checkpoint.root_hash}, key {checkpoint.key_id}."
                )
        elif action == "rotate-key":
            try:
                new_id = key_rotate(actor=_system())
            except ValueError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(f"New signing key {new_id}; the old public key stays published.")
            try:
                checkpoint_sign(actor=_system())
            except AnchorError as exc:
                raise CommandError(str(exc)) from None

    def _verify(self) -> None:
        started = time.monotonic()
        result = ledger_verify_and_alert(actor=_system())
        seconds = time.monotonic() - started
        counts = f"{result.events} events and {result.checkpoints} checkpoints"
        for warning in result.warnings:
            self.stderr.write(f"Warning: {warning}.")
        if not result.ok:
            for problem in result.problems[:20]:
                self.stderr.write(problem)
            where = (
                f"first bad sequence {result.first_bad_sequence}"
                if result.first_bad_sequence is not None
                else "see above"
            )
            raise CommandError(f"Ledger verification FAILED: {where}.")
        if not result.anchored:
            message = (
                "no anchor outside the database was checked (set AUDIT_ANCHOR_FILE or "
                "AUDIT_ANCHOR_URL): events cut off together with their checkpoints would not show"
            )
            if settings.PRODUCTION:
                raise CommandError(f"Ledger verification INCOMPLETE: {message}.")
            self.stderr.write(f"WARNING: {message}.")
            self.stdout.write(
                f"Verified without anchors: {counts} are consistent in {seconds:.1f}s."
            )
            return
        self.stdout.write(f"OK: {counts} verified in {seconds:.1f}s.")
        for checked in result.anchors_checked:
            self.stdout.write(f"Anchor checked: {checked}.")
        self.stdout.write(self._tail_line(result))

    @staticmethod
    def _tail_line(result: VerifyResult) -> str:
        after = f"after the last anchored checkpoint ({result.last_anchored_size} events)"
        if result.unanchored_events == 0:
            return "Unanchored tail: none; every event is covered by an anchored checkpoint."
        age = ""
        if result.unanchored_since is not None:
            seconds = max(0, int((timezone.now() - result.unanchored_since).total_seconds()))
            age = f"; the oldest is {naturaldelta(seconds)} old"
        return (
            f"Unanchored tail: {result.unanchored_events} events {after}{age}. A deletion of "
            "only these would not show until the next checkpoint is anchored."
        )


def naturaldelta(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} seconds"
    if seconds < 7200:
        return f"{seconds // 60} minutes"
    if seconds < 172800:
        return f"{seconds // 3600} hours"
    return f"{seconds // 86400} days"
