"""Small helpers about the signed-in person."""

from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from portal.models import User


def is_verified(user: Any) -> bool:
    """Whether ``user`` is signed in and has passed the second factor in this session.

    Right after ``django.contrib.auth.login`` the request's user is a bare model instance that
    django-otp has not wrapped yet, so a missing ``is_verified`` means "not verified".
    """
    check = getattr(user, "is_verified", None)
    return bool(user is not None and user.is_authenticated and callable(check) and check())


def signed_in_user(request: Any) -> "User":
    """The request's signed-in person, typed; views behind the login gate can rely on it."""
    from django.core.exceptions import PermissionDenied

    user = request.user
    if not user.is_authenticated:
        raise PermissionDenied("Sign in first.")
    return cast("User", user)
