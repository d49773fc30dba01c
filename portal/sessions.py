"""Session engine storing the user id on each row (``SESSION_ENGINE = "portal.sessions"``)."""

from typing import Any

from django.contrib.sessions.backends.db import SessionStore as DBStore


class SessionStore(DBStore):
    @classmethod
    def get_model_class(cls):  # type: ignore[no-untyped-def]
        from portal.models import Session

        return Session

    def create_model_instance(self, data: dict[str, Any]):  # type: ignore[no-untyped-def]
        obj = super().create_model_instance(data)
        try:
            obj.user_id = int(data.get("_auth_user_id"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            obj.user_id = None
        return obj
