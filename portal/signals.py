"""Framework hooks only: write audit events for Django's sign-in signals."""

from __future__ import annotations

from typing import Any

from allauth.account.signals import password_changed, password_reset
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver
from simple_history.signals import pre_create_historical_record

from audit.services import record
from portal.history import change_reason


@receiver(user_logged_in)
def _logged_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if request is not None and hasattr(request, "session"):
        from portal.middleware import session_started

        session_started(request)
    from portal.auth.sso import sso_sign_in_recorded

    if not sso_sign_in_recorded(request, user):
        record(actor=user, action="auth.login", target=user, request=request)
    from accessreq.services.lifecycle import person_seen

    person_seen(user)


@receiver(user_logged_out)
def _logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is not None:
        record(actor=user, action="auth.logout", target=user, request=request)


@receiver(user_login_failed)
def _login_failed(sender: Any, credentials: dict[str, Any], request: Any = None, **kw: Any) -> None:
    # Django has already masked anything that looks like a password; keep only the identifier.
    attempted = str(credentials.get("email") or credentials.get("username") or "")[:254]
    record(actor=None, action="auth.login.failed", data={"email": attempted}, request=request)


@receiver(password_reset)
def _password_reset(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    record(actor=user, action="auth.password.reset", target=user, request=request)


@receiver(password_changed)
def _password_changed(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    record(actor=user, action="auth.password.changed", target=user, request=request)


@receiver(pre_create_historical_record)
def _history_reason(sender: Any, history_instance: Any, **kwargs: Any) -> None:
    # Work done by a task for a person: the row's user is the system actor, the reason names
    # the person (see portal.history.acting_as).
    reason = change_reason()
    if reason and not history_instance.history_change_reason:
        history_instance.history_change_reason = reason
