"""What a SCIM request asks to change, read from a POST/PUT body or PATCH operations into one
shape the services apply. Reading is lenient where directories differ (Entra ID's ``"Replace"``
and ``"False"``, Okta's path-less ``value`` objects) and strict where a wrong guess would change
the wrong thing (unknown paths, values of the wrong type)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from scim.errors import ScimError, invalid_path, invalid_syntax, invalid_value
from scim.resources import ENTERPRISE_SCHEMA, GROUP_SCHEMA, PATCH_SCHEMA, USER_SCHEMA

_ENTERPRISE = ENTERPRISE_SCHEMA.lower()
_CORE_PREFIX = re.compile(r"^urn:ietf:params:scim:schemas:core:2\.0:(?:user|group):")
_WORK_EMAIL = re.compile(
    r'^emails\[\s*(?:type\s+eq\s+"work"|primary\s+eq\s+true)\s*\](?P<value>\.value)?$'
)
_OTHER_EMAIL = re.compile(r"^emails\[.*\]")
_MEMBER = re.compile(r'^members\[\s*value\s+eq\s+"(?P<id>[^"]*)"\s*\]$')
# Core and enterprise attributes Gatehouse does not keep: accepted and not stored, so a
# directory's default attribute mappings work without editing.
_IGNORED = {
    "nickname",
    "profileurl",
    "title",
    "usertype",
    "preferredlanguage",
    "locale",
    "timezone",
    "phonenumbers",
    "addresses",
    "ims",
    "photos",
    "entitlements",
    "roles",
    "x509certificates",
    "password",
    "groups",
    "id",
    "meta",
    "schemas",
    "name.middlename",
    "name.honorificprefix",
    "name.honorificsuffix",
    "enterprise:employeenumber",
    "enterprise:costcenter",
    "enterprise:organization",
    "enterprise:division",
}


@dataclass
class UserChanges:
    """Attributes a request asserts; ``None`` means "not mentioned, leave as it is", "" clears."""

    user_name: str | None = None
    external_id: str | None = None
    display_name: str | None = None
    formatted_name: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    work_email: str | None = None
    active: bool | None = None
    manager_id: str | None = None  # "" removes the manager
    department: str | None = None


@dataclass
class GroupChanges:
    """A group's new name or externalId, and membership operations in the order sent:
    ``("add" | "remove" | "replace", ids)`` or ``("remove_all", set())``."""

    display_name: str | None = None
    external_id: str | None = None
    members: list[tuple[str, set[str]]] = field(default_factory=list)


# --- Values ------------------------------------------------------------------------------------


def _text(value: Any, what: str, *, allow_null: bool = True) -> str:
    if value is None and allow_null:
        return ""
    if isinstance(value, str):
        if "\x00" in value:
            raise invalid_value(f"{what} contains a NUL character.")
        return value.strip()
    raise invalid_value(f"{what} must be a string.")


def _bool(value: Any, what: str) -> bool:
    """true/false, or Entra ID's "True"/"False" strings."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    raise invalid_value(f"{what} must be true or false.")


def _reference(value: Any, what: str) -> str:
    """An id given as ``"17"``, ``17``, ``{"value": "17"}`` or a list of one of those; "" or
    null removes."""
    if isinstance(value, list) and len(value) <= 1:
        value = value[0] if value else None
    if isinstance(value, dict):
        value = value.get("value")
    if value is None:
        return ""
    if isinstance(value, bool):
        raise invalid_value(f"{what} must be an id.")
    if isinstance(value, int):
        return str(value)
    return _text(value, what)


def _work_email(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise invalid_value("emails must be a list of objects.")
    if not value:
        return ""
    chosen = next((item for item in value if item.get("primary") is True), None)
    chosen = chosen or next((item for item in value if item.get("type") == "work"), value[0])
    return _text(chosen.get("value"), "emails.value")


def _body_object(body: Any, schema: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise invalid_syntax("The body must be a JSON object.")
    schemas = body.get("schemas")
    if schemas is not None and (not isinstance(schemas, list) or schema not in schemas):
        raise invalid_syntax(f"The body's schemas must include {schema}.")
    return body


# --- Users -------------------------------------------------------------------------------------


def _normalise(path: str) -> str:
    name = _CORE_PREFIX.sub("", path.strip().lower())
    if name == _ENTERPRISE:
        return "enterprise"
    if name.startswith(_ENTERPRISE + ":"):
        return "enterprise:" + name[len(_ENTERPRISE) + 1 :]
    return name


def _set_user(changes: UserChanges, path: str, value: Any, *, remove: bool = False) -> None:
    """Apply one attribute (``path`` normalised) to ``changes``."""
    if path in {"username"}:
        if remove:
            raise ScimError(400, "userName cannot be removed.", scim_type="mutability")
        changes.user_name = _text(value, "userName", allow_null=False)
    elif path == "externalid":
        changes.external_id = "" if remove else _text(value, "externalId")
    elif path == "displayname":
        changes.display_name = "" if remove else _text(value, "displayName")
    elif path == "active":
        if remove:
            raise ScimError(400, "active cannot be removed.", scim_type="mutability")
        changes.active = _bool(value, "active")
    elif path == "name":
        if remove or value is None:
            changes.given_name = changes.family_name = changes.formatted_name = ""
            return
        if not isinstance(value, dict):
            raise invalid_value("name must be an object.")
        for key, part in value.items():
            _set_user(changes, f"name.{key.lower()}", part)
    elif path in {"name.givenname", "name.familyname", "name.formatted"}:
        text = "" if remove else _text(value, path)
        if path == "name.givenname":
            changes.given_name = text
        elif path == "name.familyname":
            changes.family_name = text
        else:
            changes.formatted_name = text
    elif path == "emails":
        changes.work_email = "" if remove else _work_email(value)
    elif match := _WORK_EMAIL.match(path):
        if remove:
            changes.work_email = ""
        elif match.group("value"):
            changes.work_email = _text(value, "emails.value")
        else:
            changes.work_email = _work_email([value] if isinstance(value, dict) else value)
    elif _OTHER_EMAIL.match(path):
        return  # home or other addresses: Gatehouse keeps the work address only
    elif path == "enterprise":
        if remove or value is None:
            changes.manager_id = changes.department = ""
            return
        if not isinstance(value, dict):
            raise invalid_value(f"{ENTERPRISE_SCHEMA} must be an object.")
        for key, part in value.items():
            _set_user(changes, f"enterprise:{key.lower()}", part)
    elif path in {"enterprise:manager", "enterprise:manager.value", "manager"}:
        changes.manager_id = "" if remove else _reference(value, "manager")
    elif path in {"enterprise:department", "department"}:
        changes.department = "" if remove else _text(value, "department")
    elif path in _IGNORED or path.split("[")[0].split(".")[0] in _IGNORED:
        return
    else:
        raise invalid_path(f"Gatehouse has no user attribute {path!r}.")


def user_changes_from_resource(body: Any) -> UserChanges:
    """The attributes of a full User (POST, PUT). Attributes left out stay as they are; the
    enterprise extension, when sent, is taken whole (a missing manager is removed)."""
    body = _body_object(body, USER_SCHEMA)
    changes = UserChanges()
    if "userName" not in body and "username" not in {key.lower() for key in body}:
        raise invalid_value("userName is required.")
    for key, value in body.items():
        path = _normalise(key)
        if path == "enterprise":
            if not isinstance(value, dict):
                raise invalid_value(f"{ENTERPRISE_SCHEMA} must be an object.")
            value = {"manager": None, "department": None, **value}
        _set_user(changes, path, value)
    return changes


def _operations(body: Any) -> list[dict[str, Any]]:
    body = _body_object(body, PATCH_SCHEMA)
    operations = body.get("Operations", body.get("operations"))
    if not isinstance(operations, list) or not operations:
        raise invalid_syntax("A PATCH needs a non-empty 'Operations' list.")
    for operation in operations:
        if not isinstance(operation, dict):
            raise invalid_syntax("Each operation must be an object.")
        op = operation.get("op")
        if not isinstance(op, str) or op.lower() not in {"add", "replace", "remove"}:
            raise invalid_syntax(f"Unknown PATCH op {op!r}: use add, replace or remove.")
        path = operation.get("path")
        if path is not None and not isinstance(path, str):
            raise invalid_path("path must be a string.")
        if op.lower() == "remove" and not path:
            raise ScimError(400, "A remove needs a path.", scim_type="noTarget")
        if op.lower() != "remove" and "value" not in operation:
            raise invalid_syntax(f"The {op} operation needs a value.")
    return operations


def user_changes_from_patch(body: Any) -> UserChanges:
    """PATCH operations on a User, in order (a later one wins)."""
    changes = UserChanges()
    for operation in _operations(body):
        op = str(operation["op"]).lower()
        path = operation.get("path")
        value = operation.get("value")
        if path:
            _set_user(changes, _normalise(path), value, remove=op == "remove")
            continue
        if not isinstance(value, dict):
            raise invalid_value("Without a path the value must be an object of attributes.")
        for key, part in value.items():
            _set_user(changes, _normalise(key), part)
    return changes


# --- Groups ------------------------------------------------------------------------------------


def _member_ids(value: Any) -> set[str]:
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise invalid_value("members must be a list of {'value': id}.")
    ids = set()
    for item in value:
        member = _reference(item, "members.value")
        if not member:
            raise invalid_value("Each member needs a value (the person's id).")
        ids.add(member)
    return ids


def _set_group(changes: GroupChanges, op: str, path: str, value: Any) -> None:
    if path == "displayname":
        if op == "remove":
            raise ScimError(400, "displayName cannot be removed.", scim_type="mutability")
        changes.display_name = _text(value, "displayName", allow_null=False)
    elif path == "externalid":
        changes.external_id = "" if op == "remove" else _text(value, "externalId")
    elif path == "members":
        if op == "remove":
            if value in (None, []):
                changes.members.append(("remove_all", set()))
            else:
                changes.members.append(("remove", _member_ids(value)))
        else:
            changes.members.append((op, _member_ids(value)))
    elif match := _MEMBER.match(path):
        if op != "remove":
            raise invalid_path("A member filter in the path is only for remove.")
        changes.members.append(("remove", {match.group("id")}))
    elif path in {"id", "meta", "schemas"}:
        return
    else:
        raise invalid_path(f"Gatehouse has no group attribute {path!r}.")


def group_changes_from_resource(body: Any) -> GroupChanges:
    """A full Group (POST, PUT): its name, externalId and, if sent, exactly these members."""
    body = _body_object(body, GROUP_SCHEMA)
    changes = GroupChanges()
    if not isinstance(body.get("displayName"), str) or not body["displayName"].strip():
        raise invalid_value("displayName is required.")
    for key, value in body.items():
        path = _normalise(key)
        _set_group(changes, "replace", path, value)
    return changes


def group_changes_from_patch(body: Any) -> GroupChanges:
    changes = GroupChanges()
    for operation in _operations(body):
        op = str(operation["op"]).lower()
        path = operation.get("path")
        value = operation.get("value")
        if path:
            _set_group(changes, op, _normalise(path), value)
            continue
        if not isinstance(value, dict):
            raise invalid_value("Without a path the value must be an object of attributes.")
        for key, part in value.items():
            _set_group(changes, op, _normalise(key), part)
    return changes
