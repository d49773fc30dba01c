"""Session engine storing the user id on each row (``SESSION_ENGINE = "portal.sessions"``)."""

from typing import Any, cast

from django.contrib.sessions.backends.db import SessionStore as DBStore

from portal.models.sessions import Session


class SessionStore(DBStore):
    @classmethod
    def get_model_class(cls) -> type[Session]:
        return Session

    def create_model_instance(self, data: dict[str, Any]) -> Session:
        obj = cast(Session, super().create_model_instance(data))
        try:
            obj.user_id = int(data["_auth_user_id"])
        except (KeyError, TypeError, ValueError):
            obj.user_id = None
        return obj
