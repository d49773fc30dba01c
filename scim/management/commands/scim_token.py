"""``manage.py scim_token mint|list|revoke``: SCIM tokens from the command line (for automated
set-up), acting as the system actor; each is audited like the portal page's."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.models import User
from scim.models import ScimToken
from scim.tokens import TokenRefused, scim_token_mint, scim_token_revoke


class Command(BaseCommand):
    help = "Mint (secret printed once), list or revoke SCIM tokens."

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="action", required=True)
        minting = commands.add_parser("mint", help="Mint a token; prints the secret once.")
        minting.add_argument("name", help="The directory that will use it, e.g. okta-prod.")
        commands.add_parser("list", help="List tokens (never their secrets).")
        revoking = commands.add_parser("revoke", help="Revoke a token by name or id.")
        revoking.add_argument("token", help="The token's name or id.")
        revoking.add_argument("--reason", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        actor = User.objects.system_actor()
        action = options["action"]
        try:
            if action == "mint":
                minted = scim_token_mint(actor=actor, name=options["name"], via="manage.py")
                self.stdout.write(f"SCIM token {minted.token.name} (shown once; keep it secret):")
                self.stdout.write(minted.secret)
            elif action == "list":
                for token in ScimToken.objects.all():
                    state = f"revoked {token.revoked_at:%Y-%m-%d}" if token.revoked_at else "active"
                    used = f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never"
                    self.stdout.write(
                        f"{token.pk}\t{token.name}\t{token.prefix}…\t{state}\tlast used {used}"
                    )
            else:
                wanted = options["token"]
                found = ScimToken.objects.filter(name=wanted).first()
                if found is None and wanted.isdigit():
                    found = ScimToken.objects.filter(pk=int(wanted)).first()
                if found is None:
                    raise CommandError(f"No SCIM token {wanted!r}.")
                scim_token_revoke(
                    actor=actor, token_id=found.pk, reason=options["reason"], via="manage.py"
                )
                self.stdout.write(f"Revoked {found.name}.")
        except TokenRefused as error:
            raise CommandError(str(error)) from None
