"""How Gatehouse's people and teams look as SCIM resources (RFC 7643), and the discovery
documents (ServiceProviderConfig, ResourceTypes, Schemas)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db.models import Prefetch, QuerySet
from django.urls import reverse

from portal.models import Team, User
from scim.models import ScimGroup, ScimIdentity

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SPC_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SCHEMA_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"


# --- What SCIM can see -------------------------------------------------------------------------


def scim_users() -> QuerySet[User]:
    """The people a directory may read and change: humans, not superusers (the local
    administrators stay out of a directory's reach), not deleted through SCIM. Service accounts
    and the system actor are never visible."""
    return User.objects.filter(kind=User.Kind.HUMAN, is_superuser=False).exclude(
        scim_identity__deleted_at__isnull=False
    )


def scim_users_for_listing() -> QuerySet[User]:
    return scim_users().select_related("scim_identity", "manager", "team", "team__scim_group")


def scim_teams() -> QuerySet[Team]:
    """Every team but those a directory deleted."""
    return Team.objects.exclude(scim_group__deleted_at__isnull=False)


def scim_teams_for_listing(*, with_members: bool = True) -> QuerySet[Team]:
    teams = scim_teams().select_related("scim_group")
    if with_members:
        members = scim_users().only("pk", "display_name", "team_id").order_by("pk")
        teams = teams.prefetch_related(
            Prefetch("members", queryset=members, to_attr="scim_members")
        )
    return teams


def identity_of(user: User) -> ScimIdentity | None:
    try:
        return user.scim_identity
    except ScimIdentity.DoesNotExist:
        return None


def link_of(team: Team) -> ScimGroup | None:
    try:
        return team.scim_group
    except ScimGroup.DoesNotExist:
        return None


# --- Representations ---------------------------------------------------------------------------


def _timestamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def location(name: str, *args: Any) -> str:
    return settings.SITE_URL.rstrip("/") + reverse(f"scim:{name}", args=args)


def version_of(resource: dict[str, Any]) -> str:
    """A weak ETag of everything but ``meta``: it changes whenever what SCIM shows changes."""
    content = {key: value for key, value in resource.items() if key != "meta"}
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
    return f'W/"{digest[:20]}"'


def user_resource(user: User) -> dict[str, Any]:
    """``user`` as a SCIM User with the enterprise extension."""
    identity = identity_of(user)
    resource: dict[str, Any] = {
        "schemas": [USER_SCHEMA, ENTERPRISE_SCHEMA],
        "id": str(user.pk),
    }
    if identity is not None and identity.external_id:
        resource["externalId"] = identity.external_id
    name: dict[str, str] = {"formatted": user.display_name}
    if identity is not None and identity.given_name:
        name["givenName"] = identity.given_name
    if identity is not None and identity.family_name:
        name["familyName"] = identity.family_name
    resource.update(
        {
            "userName": user.email,
            "name": name,
            "displayName": user.display_name,
            "active": user.is_active,
            "emails": [
                {
                    "value": (identity.work_email if identity else "") or user.email,
                    "type": "work",
                    "primary": True,
                }
            ],
        }
    )
    team = user.team
    team_link = link_of(team) if team is not None else None
    if team is not None and (team_link is None or team_link.deleted_at is None):
        resource["groups"] = [
            {"value": str(team.pk), "display": team.name, "$ref": location("group", team.pk)}
        ]
    enterprise: dict[str, Any] = {}
    manager = user.manager
    if manager is not None and manager.kind == User.Kind.HUMAN and not manager.is_superuser:
        enterprise["manager"] = {
            "value": str(manager.pk),
            "displayName": manager.display_name,
            "$ref": location("user", manager.pk),
        }
    if identity is not None and identity.department:
        enterprise["department"] = identity.department
    resource[ENTERPRISE_SCHEMA] = enterprise
    modified = identity.updated_at if identity is not None else user.date_joined
    resource["meta"] = {
        "resourceType": "User",
        "created": _timestamp(user.date_joined),
        "lastModified": _timestamp(max(modified, user.date_joined)),
        "location": location("user", user.pk),
        "version": version_of(resource),
    }
    return resource


def group_resource(team: Team, *, members: list[User] | None = None) -> dict[str, Any]:
    """``team`` as a SCIM Group; ``members`` are its visible people (None: leave them out, as
    for ``excludedAttributes=members``)."""
    link = link_of(team)
    resource: dict[str, Any] = {"schemas": [GROUP_SCHEMA], "id": str(team.pk)}
    if link is not None and link.external_id:
        resource["externalId"] = link.external_id
    resource["displayName"] = team.name
    if members is not None:
        resource["members"] = [
            {
                "value": str(member.pk),
                "display": member.display_name,
                "type": "User",
                "$ref": location("user", member.pk),
            }
            for member in members
        ]
    meta: dict[str, Any] = {"resourceType": "Group", "location": location("group", team.pk)}
    if link is not None:
        meta["created"] = _timestamp(link.created_at)
        meta["lastModified"] = _timestamp(link.updated_at)
    resource["meta"] = meta
    meta["version"] = version_of(resource)
    return resource


def group_members(team: Team) -> list[User]:
    prefetched = getattr(team, "scim_members", None)
    if prefetched is not None:
        return list(prefetched)
    return list(scim_users().filter(team=team).only("pk", "display_name").order_by("pk"))


def pick_attributes(
    resource: dict[str, Any], attributes: list[str], excluded: list[str]
) -> dict[str, Any]:
    """Apply ``attributes``/``excludedAttributes`` to the top-level attributes (sub-attributes
    name their parent); ``id``, ``schemas`` and ``meta`` always stay."""

    def top(name: str) -> str:
        name = name.strip()
        if name.lower().startswith(ENTERPRISE_SCHEMA.lower() + ":"):
            return ENTERPRISE_SCHEMA.lower()
        return name.split(".")[0].lower()

    always = {"id", "schemas", "meta"}
    if attributes:
        wanted = {top(name) for name in attributes} | always
        return {key: value for key, value in resource.items() if key.lower() in wanted}
    if excluded:
        dropped = {top(name) for name in excluded} - always
        return {key: value for key, value in resource.items() if key.lower() not in dropped}
    return resource


def list_response(
    resources: list[dict[str, Any]], *, total: int, start_index: int
) -> dict[str, Any]:
    return {
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }


# --- Discovery ---------------------------------------------------------------------------------


def service_provider_config() -> dict[str, Any]:
    return {
        "schemas": [SPC_SCHEMA],
        "documentationUri": settings.SITE_URL.rstrip("/") + "/docs/runbooks/scim/",
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": settings.SCIM_MAX_RESULTS},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": True},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "Bearer token",
                "description": "A SCIM token minted by a Gatehouse security admin, sent as "
                "'Authorization: Bearer gts_...'.",
                "primary": True,
            }
        ],
        "meta": {"resourceType": "ServiceProviderConfig", "location": location("config")},
    }


def resource_types() -> list[dict[str, Any]]:
    return [
        {
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "A person (userName is their email address)",
            "schema": USER_SCHEMA,
            "schemaExtensions": [{"schema": ENTERPRISE_SCHEMA, "required": False}],
            "meta": {"resourceType": "ResourceType", "location": location("resource_type", "User")},
        },
        {
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": "Group",
            "name": "Group",
            "endpoint": "/Groups",
            "description": "A team; a person is in at most one",
            "schema": GROUP_SCHEMA,
            "meta": {
                "resourceType": "ResourceType",
                "location": location("resource_type", "Group"),
            },
        },
    ]


def _attribute(
    name: str,
    kind: str = "string",
    *,
    required: bool = False,
    multi: bool = False,
    mutability: str = "readWrite",
    uniqueness: str = "none",
    case_exact: bool = False,
    sub: list[dict[str, Any]] | None = None,
    description: str = "",
) -> dict[str, Any]:
    attribute: dict[str, Any] = {
        "name": name,
        "type": kind,
        "multiValued": multi,
        "description": description,
        "required": required,
        "caseExact": case_exact,
        "mutability": mutability,
        "returned": "default",
        "uniqueness": uniqueness,
    }
    if sub:
        attribute["subAttributes"] = sub
    return attribute


def _reference(name: str = "value", mutability: str = "readWrite") -> list[dict[str, Any]]:
    return [
        _attribute(name, mutability=mutability),
        _attribute("display", mutability="readOnly"),
        _attribute("$ref", "reference", mutability="readOnly"),
    ]


def schemas() -> list[dict[str, Any]]:
    user = [
        _attribute(
            "userName",
            required=True,
            uniqueness="server",
            description="The person's email address, which they sign in with (lowercased)",
        ),
        _attribute(
            "name",
            "complex",
            sub=[_attribute("formatted"), _attribute("givenName"), _attribute("familyName")],
        ),
        _attribute("displayName"),
        _attribute("active", "boolean", description="false: the person leaves (access revoked)"),
        _attribute(
            "emails",
            "complex",
            multi=True,
            sub=[_attribute("value"), _attribute("type"), _attribute("primary", "boolean")],
        ),
        _attribute(
            "groups",
            "complex",
            multi=True,
            mutability="readOnly",
            sub=_reference(mutability="readOnly"),
            description="The person's team (at most one)",
        ),
    ]
    group = [
        _attribute("displayName", required=True, uniqueness="server"),
        _attribute(
            "members",
            "complex",
            multi=True,
            sub=_reference(),
            description="Adding a person moves them from their previous team",
        ),
    ]
    enterprise = [
        _attribute("manager", "complex", sub=_reference()),
        _attribute("department"),
    ]
    documents = []
    for urn, name, attributes in (
        (USER_SCHEMA, "User", user),
        (GROUP_SCHEMA, "Group", group),
        (ENTERPRISE_SCHEMA, "EnterpriseUser", enterprise),
    ):
        documents.append(
            {
                "schemas": [SCHEMA_SCHEMA],
                "id": urn,
                "name": name,
                "description": f"{name} as Gatehouse keeps it",
                "attributes": attributes,
                "meta": {"resourceType": "Schema", "location": location("schema", urn)},
            }
        )
    return documents
