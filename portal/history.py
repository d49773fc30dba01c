"""Who a history row (django-simple-history) is attributed to.

In a web request it is the signed-in person; in Celery tasks and management commands it is the
named system actor, or whoever a service says it acts for. Never empty.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_acting: ContextVar[Any] = ContextVar("gatehouse_history_actor", default=None)
_caused_by: ContextVar[Any] = ContextVar("gatehouse_history_cause", default=None)


@contextmanager
def acting_as(actor: Any, *, caused_by: Any = None) -> Iterator[None]:
    """Attribute history rows written inside the block to ``actor``.

    A Celery task acts as the system actor; ``caused_by`` names the person whose action led to
    it, and is written as the history row's change reason.
    """
    token = _acting.set(actor)
    cause = _caused_by.set(caused_by)
    try:
        yield
    finally:
        _acting.reset(token)
        _caused_by.reset(cause)


def change_reason() -> str:
    """The reason to write on history rows in this context ("" when none)."""
    cause = _caused_by.get()
    if cause is None:
        return ""
    return f"on behalf of {cause} (user #{cause.pk})"


def get_history_user(instance: Any = None, request: Any = None, **_: Any) -> Any:
    explicit = getattr(instance, "_history_user", None) if instance is not None else None
    if explicit is not None:
        return explicit
    actor = _acting.get()
    if actor is not None:
        return actor
    user = getattr(request, "user", None) if request is not None else None
    if user is not None and user.is_authenticated:
        return user
    from portal.models import User

    return User.objects.system_actor()
