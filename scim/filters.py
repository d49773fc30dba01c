"""The SCIM filters Gatehouse answers (RFC 7644 §3.4.2.2): ``eq`` comparisons of the attributes
directories look people and groups up by, joined with ``and``. Okta and Entra ID only ever send
those (``userName eq "..."``, ``externalId eq "..."``, ``displayName eq "..."``); anything else
is refused with ``400 invalidFilter`` rather than answered wrongly."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from django.db.models import Q

from scim.errors import ScimError

_TOKEN = re.compile(
    r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<word>[A-Za-z0-9:._$-]+)|(?P<other>\S))'
)
_CORE_URN = re.compile(r"^urn:ietf:params:scim:schemas:core:2\.0:(?:user|group):")
_OPERATORS = {"eq", "ne", "co", "sw", "ew", "pr", "gt", "ge", "lt", "le"}


def _invalid(detail: str) -> ScimError:
    return ScimError(400, detail, scim_type="invalidFilter")


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens = []
    position = 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            break
        kind = match.lastgroup or "other"
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def parse_filter(text: str) -> list[tuple[str, str]]:
    """``text`` as a list of ``(attribute, value)`` pairs that must all be equal; attribute names
    lowercased (SCIM names are case-insensitive)."""
    if len(text) > 1000:
        raise _invalid("The filter is too long.")
    tokens = _tokens(text)
    if not tokens:
        raise _invalid("The filter is empty.")
    pairs = []
    index = 0
    while True:
        if index + 3 > len(tokens):
            raise _invalid(f"Incomplete filter {text!r}: expected 'attribute eq \"value\"'.")
        (attr_kind, attribute), (op_kind, operator), (value_kind, raw) = tokens[index : index + 3]
        if attr_kind != "word" or op_kind != "word":
            raise _invalid(f"Cannot read the filter {text!r}.")
        if operator.lower() != "eq":
            if operator.lower() in _OPERATORS:
                raise _invalid(f"Only 'eq' filters are supported, not {operator!r}.")
            raise _invalid(f"Unknown operator {operator!r} in the filter.")
        if value_kind == "string":
            try:
                value = json.loads(raw)
            except ValueError:
                raise _invalid(f"Bad string {raw} in the filter.") from None
        elif value_kind == "word" and raw.lower() in {"true", "false"}:
            value = raw.lower()
        else:
            raise _invalid(f"Compare with a quoted string, not {raw!r}.")
        pairs.append((attribute.lower(), str(value)))
        index += 3
        if index == len(tokens):
            return pairs
        kind, word = tokens[index]
        if kind != "word" or word.lower() != "and" or index + 1 == len(tokens):
            raise _invalid(f"Only comparisons joined with 'and' are supported ({text!r}).")
        index += 1


def _active(value: str) -> Q:
    if value not in {"true", "false"}:
        raise _invalid("active compares with true or false.")
    return Q(is_active=value == "true")


def _pk(value: str) -> Q:
    return Q(pk=int(value)) if value.isdigit() else Q(pk__in=[])


USER_FILTERS: dict[str, Callable[[str], Q]] = {
    "username": lambda v: Q(email__iexact=v),
    "externalid": lambda v: Q(scim_identity__external_id=v) & ~Q(scim_identity__external_id=""),
    "id": _pk,
    "emails.value": lambda v: Q(email__iexact=v) | Q(scim_identity__work_email__iexact=v),
    "emails": lambda v: Q(email__iexact=v) | Q(scim_identity__work_email__iexact=v),
    "active": _active,
}

GROUP_FILTERS: dict[str, Callable[[str], Q]] = {
    "displayname": lambda v: Q(name__iexact=v),
    "externalid": lambda v: Q(scim_group__external_id=v) & ~Q(scim_group__external_id=""),
    "id": _pk,
    "members": lambda v: Q(members__pk=int(v)) if v.isdigit() else Q(pk__in=[]),
    "members.value": lambda v: Q(members__pk=int(v)) if v.isdigit() else Q(pk__in=[]),
}


def filter_q(text: str, supported: dict[str, Callable[[str], Q]]) -> Q:
    """The query for a filter over one resource type's ``supported`` attributes."""
    query = Q()
    for attribute, value in parse_filter(text):
        build = supported.get(_CORE_URN.sub("", attribute))
        if build is None:
            names = ", ".join(sorted(supported))
            raise _invalid(f"Filtering by {attribute!r} is not supported (only {names}).")
        query &= build(value)
    return query
