"""What every SCIM change shares: the acting system actor, the event data naming the
directory, and the If-Match check."""

from __future__ import annotations

from typing import Any

from portal.models import User
from scim.errors import ScimError
from scim.models import ScimToken


def system_actor() -> User:
    return User.objects.system_actor()


def event_data(token: ScimToken, **extra: Any) -> dict[str, Any]:
    return {"source": token.source, "scim_token": token.name, "scim_token_id": token.pk, **extra}


def check_version(resource: dict[str, Any], if_match: str | None) -> None:
    """RFC 7644 §3.14: a write with ``If-Match`` goes ahead only on the current version."""
    if not if_match:
        return
    wanted = {part.strip() for part in if_match.split(",")}
    current = resource["meta"]["version"]
    if "*" not in wanted and current not in wanted and current.removeprefix("W/") not in wanted:
        raise ScimError(412, f"The resource changed: its version is now {current}.")
