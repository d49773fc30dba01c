"""Database sessions that remember their user, so a person's sessions can be ended at once."""

from django.contrib.sessions.base_session import AbstractBaseSession
from django.db import models


class Session(AbstractBaseSession):
    """A Django session row with the signed-in user's id alongside."""

    user_id = models.BigIntegerField(null=True, db_index=True)

    @classmethod
    def get_session_store_class(cls) -> type:
        from portal.sessions import SessionStore

        return SessionStore
