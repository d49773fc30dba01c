"""``manage.py totp EMAIL``: the current authenticator code of a user, to sign in to the demo.

Development only: it reads the user's TOTP secret, so it is refused in production.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_otp.oath import TOTP

from portal.models import TOTPDevice, User


class Command(BaseCommand):
    help = (
        "Print the current TOTP code of EMAIL's authenticator (on stdout; how long it stays "
        "valid goes to stderr). For signing in to demo data; refused in production."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email", help="Email address of the person, e.g. developer@example.com")

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError(
                "Refusing to show authenticator codes in production (GATEHOUSE_ENV=production): "
                "this command exists only to sign in to demo data."
            )
        email = options["email"].strip()
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            raise CommandError(f"No user has the email address {email!r}.")
        device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
        if device is None:
            raise CommandError(
                f"{user.email} has no enrolled authenticator. Demo personas get one from "
                "`manage.py seed_demo`; anyone else enrols after signing in with a password."
            )

        now = time.time()
        # One clock reading for both the code and its remaining time, so they agree at the
        # edge of a time step.
        totp = TOTP(device.bin_key, device.step, 0, device.digits, device.drift)
        totp.time = now
        code = f"{totp.token():0{device.digits}d}"
        remaining = device.step - int(now) % device.step
        self.stdout.write(code)
        note = f"Valid for {remaining} more second{'s' if remaining != 1 else ''}."
        if totp.t() <= device.last_t:
            note += " It has already been used to sign in; wait for the next one."
        self.stderr.write(note, style_func=lambda text: text)
