"""Request and response schemas of the API, and the small validator that checks request bodies
against the very schemas the OpenAPI document publishes (one source, so they cannot drift).

The validator covers the JSON Schema subset used here: ``type`` (object, string, integer,
boolean, array), ``properties``, ``required``, ``additionalProperties: false``, ``minLength``,
``maxLength``, ``pattern``, ``enum``, ``minimum``, ``maximum``, ``items``, ``maxItems``,
``maxProperties``, ``propertyNames`` and a schema as ``additionalProperties``.
"""

from __future__ import annotations

import re
from typing import Any

Schema = dict[str, Any]


class SchemaError(ValueError):
    """The body does not match its schema; the message names the field."""


_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "string": (str,),
    "integer": (int,),
    "boolean": (bool,),
    "array": (list,),
}


def validate(value: Any, schema: dict[str, Any], where: str = "body") -> None:
    """Raise :class:`SchemaError` unless ``value`` matches ``schema``."""
    expected = schema.get("type")
    if expected:
        ok = isinstance(value, _TYPES[expected])
        if expected == "integer" and isinstance(value, bool):
            ok = False
        if not ok:
            raise SchemaError(
                f"{where} must be {'an' if expected[0] in 'aeiou' else 'a'} {expected}."
            )
    if "enum" in schema and value not in schema["enum"]:
        raise SchemaError(f"{where} must be one of {', '.join(map(str, schema['enum']))}.")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            raise SchemaError(f"{where} is required." if not value else f"{where} is too short.")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            raise SchemaError(f"{where} is longer than {schema['maxLength']} characters.")
        problem = text_problem(value)
        if problem:
            raise SchemaError(f"{where} {problem}.")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            raise SchemaError(f"{where} has an invalid format.")
    if expected == "integer":
        if "minimum" in schema and value < schema["minimum"]:
            raise SchemaError(f"{where} must be at least {schema['minimum']}.")
        if "maximum" in schema and value > schema["maximum"]:
            raise SchemaError(f"{where} must be at most {schema['maximum']}.")
    if expected == "array":
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            raise SchemaError(f"{where} has more than {schema['maxItems']} items.")
        for index, item in enumerate(value):
            validate(item, schema.get("items", {}), f"{where}[{index}]")
    if expected == "object":
        properties: dict[str, Any] = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                raise SchemaError(f"{_join(where, name)} is required.")
        extra = schema.get("additionalProperties")
        if extra is False:
            unknown = sorted(set(value) - set(properties))
            if unknown:
                raise SchemaError(f"{_join(where, unknown[0])} is not a known field.")
        if "maxProperties" in schema and len(value) > schema["maxProperties"]:
            raise SchemaError(f"{where} has more than {schema['maxProperties']} entries.")
        names = schema.get("propertyNames")
        for name in sorted(set(value) - set(properties)):
            if names is not None:
                validate(name, names, f"a name in {where}")
            if isinstance(extra, dict):
                validate(value[name], extra, _join(where, name))
        for name, sub in properties.items():
            if name in value:
                validate(value[name], sub, _join(where, name))


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text, if it cannot: PostgreSQL refuses NUL, and JSON's
    ``\\ud800`` escapes decode to lone surrogates that no database (nor the ledger's UTF-8
    encoding) accepts."""
    if "\x00" in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains an unpaired surrogate, which is not valid Unicode text"
    return None


def _join(where: str, name: str) -> str:
    return name if where == "body" else f"{where}.{name}"


SLUG: Schema = {"type": "string", "minLength": 1, "maxLength": 100, "pattern": r"^[-a-zA-Z0-9_]+$"}
# Scopes and environments have 50-character slugs (systems 100), so a scope triple fits the
# audit event's target id.
SHORT_SLUG: Schema = {**SLUG, "maxLength": 50}
SHORT_TEXT: Schema = {"type": "string", "maxLength": 200}

ERROR: Schema = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "Stable, machine-readable reason."},
                "message": {"type": "string", "description": "What went wrong, for people."},
            },
        },
        "deployment_id": {
            "type": "integer",
            "description": "With 409 deployment_pending: the deployment already waiting.",
        },
    },
}

TOKEN_EXCHANGE_REQUEST: Schema = {
    "type": "object",
    "required": ["id_token"],
    "additionalProperties": False,
    "properties": {
        "id_token": {
            "type": "string",
            "minLength": 1,
            "maxLength": 16384,
            "description": "The CI job's OIDC ID token (GitHub Actions or GitLab CI).",
        }
    },
}

SCOPE: Schema = {
    "type": "object",
    "required": ["action", "system", "environment"],
    "properties": {
        "action": {"type": "string"},
        "system": {"type": "string"},
        "environment": {"type": "string"},
    },
}

SERVICE_ACCOUNT: Schema = {
    "type": "object",
    "required": ["id", "name"],
    "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
}

TOKEN_EXCHANGE_RESPONSE: Schema = {
    "type": "object",
    "required": ["access_token", "token_type", "expires_in", "expires_at", "token_id"],
    "properties": {
        "access_token": {"type": "string", "description": "Shown once; send it as a bearer."},
        "token_type": {"type": "string", "enum": ["Bearer"]},
        "expires_in": {"type": "integer"},
        "expires_at": {"type": "string", "format": "date-time"},
        "token_id": {"type": "integer"},
        "token_prefix": {"type": "string"},
        "service_account": SERVICE_ACCOUNT,
        "scopes": {"type": "array", "items": SCOPE},
        "audit_event_id": {"type": "integer"},
    },
}

PIPELINE_CONTEXT: Schema = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "commit_sha": {"type": "string", "pattern": r"^[0-9a-fA-F]{7,64}$"},
        "run_id": SHORT_TEXT,
        "stage": SHORT_TEXT,
        "repository": SHORT_TEXT,
    },
}

AUTHORIZE_REQUEST: Schema = {
    "type": "object",
    "required": ["action", "system", "environment"],
    "additionalProperties": False,
    "properties": {
        "action": {**SHORT_SLUG, "description": "The scope asked for, e.g. deploy."},
        "system": {**SLUG, "description": "The system's slug, e.g. payments-service."},
        "environment": {**SHORT_SLUG, "description": "The environment's slug, e.g. prod."},
        "context": {**PIPELINE_CONTEXT, "description": "Recorded with the decision."},
    },
}

REASON: Schema = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
}

AUTHORIZE_RESPONSE: Schema = {
    "type": "object",
    "required": ["decision", "allowed", "reasons", "audit_event_id"],
    "properties": {
        "decision": {"type": "string", "enum": ["allow", "deny"]},
        "allowed": {"type": "boolean"},
        "reasons": {"type": "array", "items": REASON},
        "audit_event_id": {"type": "integer"},
        "principal": SERVICE_ACCOUNT,
        "error": ERROR["properties"]["error"],
    },
}

TOKEN: Schema = {
    "type": "object",
    "required": ["id", "prefix", "kind", "state", "created_at", "expires_at"],
    "properties": {
        "id": {"type": "integer"},
        "prefix": {"type": "string"},
        "kind": {"type": "string", "enum": ["exchanged", "minted"]},
        "name": {"type": "string"},
        "state": {"type": "string", "enum": ["active", "expired", "revoked"]},
        "created_at": {"type": "string", "format": "date-time"},
        "expires_at": {"type": "string", "format": "date-time"},
        "last_used_at": {"type": ["string", "null"], "format": "date-time"},
        "revoked_at": {"type": ["string", "null"], "format": "date-time"},
        "scopes": {"type": ["array", "null"], "items": SCOPE},
    },
}

TOKEN_LIST: Schema = {
    "type": "object",
    "required": ["tokens"],
    "properties": {"tokens": {"type": "array", "items": TOKEN}},
}

WHOAMI: Schema = {
    "type": "object",
    "required": ["service_account", "token"],
    "properties": {"service_account": SERVICE_ACCOUNT, "token": TOKEN},
}

REVOKE_REQUEST: Schema = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"reason": SHORT_TEXT},
}


def scope_objects(triples: list[str] | None) -> list[dict[str, str]] | None:
    """``scope:system:environment`` strings as API objects."""
    if triples is None:
        return None
    result = []
    for triple in triples:
        action, system, environment = triple.split(":", 2)
        result.append({"action": action, "system": system, "environment": environment})
    return result


# --- Deployment approvals ----------------------------------------------------------------------

CHECK_STATUSES = ["passed", "failed", "skipped", "pending"]
LINK: Schema = {
    "type": "object",
    "required": ["url"],
    "additionalProperties": False,
    "properties": {
        "title": {"type": "string", "maxLength": 100},
        "url": {"type": "string", "maxLength": 500, "pattern": r"^https?://[^\s]+$"},
    },
}

DEPLOYMENT_REQUEST: Schema = {
    "type": "object",
    "required": ["system", "environment", "commit_sha"],
    "additionalProperties": False,
    "properties": {
        "system": {**SLUG, "description": "The system's slug, e.g. payments-service."},
        "environment": {**SHORT_SLUG, "description": "The environment's slug, e.g. prod."},
        "commit_sha": {
            "type": "string",
            "pattern": r"^[0-9a-fA-F]{40}$",
            "description": "The full commit SHA the approval is valid for.",
        },
        "action": {
            **SHORT_SLUG,
            "description": "The scope the account must hold (default deploy).",
        },
        "checks": {
            "type": "object",
            "maxProperties": 20,
            "propertyNames": {"type": "string", "pattern": r"^[-a-zA-Z0-9_.]{1,50}$"},
            "additionalProperties": {"type": "string", "enum": CHECK_STATUSES},
            "description": 'Check name to status, e.g. {"tests": "passed", "scan": "passed"}.',
        },
        "artifact_digest": {
            "type": "string",
            "maxLength": 200,
            "pattern": r"^[a-z0-9]+:[0-9a-fA-F]{32,128}$",
            "description": "e.g. sha256:<hex> of the image or package being deployed.",
        },
        "links": {"type": "array", "maxItems": 10, "items": LINK},
        "repository": SHORT_TEXT,
        "ref": SHORT_TEXT,
        "run_id": SHORT_TEXT,
        "stage": SHORT_TEXT,
        "description": {"type": "string", "maxLength": 2000},
        "callback_url": {
            "type": "string",
            "maxLength": 500,
            "pattern": r"^https?://[^\s]+$",
            "description": "Receives the signed decision (https, or http to this machine).",
        },
    },
}

DEPLOYMENT: Schema = {
    "type": "object",
    "required": ["id", "state", "system", "environment", "commit_sha", "checks", "approvers"],
    "properties": {
        "id": {"type": "integer"},
        "state": {"type": "string", "enum": ["pending", "approved", "denied", "used", "expired"]},
        "system": {"type": "string"},
        "environment": {"type": "string"},
        "scope": {"type": "string"},
        "commit_sha": {"type": "string"},
        "repository": {"type": "string"},
        "ref": {"type": "string"},
        "run_id": {"type": "string"},
        "stage": {"type": "string"},
        "checks": {"type": "object", "additionalProperties": {"type": "string"}},
        "artifact_digest": {"type": "string"},
        "links": {"type": "array", "items": LINK},
        "current_stage": {"type": "integer"},
        "stage_count": {"type": "integer"},
        "created_at": {"type": "string", "format": "date-time"},
        "timeout_at": {"type": "string", "format": "date-time"},
        "decided_at": {"type": ["string", "null"], "format": "date-time"},
        "expires_at": {"type": ["string", "null"], "format": "date-time"},
        "used_at": {"type": ["string", "null"], "format": "date-time"},
        "approvers": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "stage", "decision"],
                "properties": {
                    "name": {"type": "string"},
                    "stage": {"type": "integer"},
                    "decision": {"type": "string", "enum": ["approve", "deny"]},
                    "decided_at": {"type": "string", "format": "date-time"},
                },
            },
        },
        "comment": {"type": "string", "description": "The denial's reason."},
    },
}

DEPLOYMENT_CREATED: Schema = {
    "type": "object",
    "required": ["deployment", "audit_event_id"],
    "properties": {
        "deployment": {"$ref": "#/components/schemas/Deployment"},
        "audit_event_id": {"type": "integer"},
        "callback_secret": {
            "type": "string",
            "description": "Shown once (with a callback_url): verifies the callback signature.",
        },
    },
}
