"""``manage.py audit verify|checkpoint|rotate-key``: ledger operations from the command line."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.checkpoints import checkpoint_sign, key_rotate
from audit.verify import ledger_verify_and_alert


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
            checkpoint = checkpoint_sign(actor=_system())
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
            checkpoint_sign(actor=_system())

    def _verify(self) -> None:
        started = time.monotonic()
        result = ledger_verify_and_alert(actor=_system())
        seconds = time.monotonic() - started
        if result.ok:
            self.stdout.write(
                f"OK: {result.events} events and {result.checkpoints} checkpoints verified "
                f"in {seconds:.1f}s."
            )
            return
        for problem in result.problems[:20]:
            self.stderr.write(problem)
        where = (
            f"first bad sequence {result.first_bad_sequence}"
            if result.first_bad_sequence is not None
            else "see above"
        )
        raise CommandError(f"Ledger verification FAILED: {where}.")
