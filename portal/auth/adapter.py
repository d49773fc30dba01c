"""allauth adapter: accounts come from administrators, never from open sign-up."""

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from django.http import HttpRequest


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return False

    def authenticate(self, request: HttpRequest, **credentials: Any) -> Any:
        # Service accounts act only through API tokens: a password that works for one is
        # answered like a wrong password, so the form says nothing about the account.
        user = super().authenticate(request, **credentials)
        if user is not None and getattr(user, "kind", "human") != "human":
            return None
        return user

    def add_message(
        self,
        request: HttpRequest,
        level: int,
        message_template: str | None = None,
        message_context: dict[str, Any] | None = None,
        extra_tags: str = "",
        message: str | None = None,
    ) -> None:
        # "Signed in" after the password alone would be untrue: the second factor comes next.
        if message_template == "account/messages/logged_in.txt":
            return
        super().add_message(
            request, level, message_template, message_context, extra_tags, message=message
        )
