"""The canonical form of an audit event: the exact bytes that are hashed into the ledger.

Format ``gatehouse-audit-v1``: a JSON object with these keys, serialised with keys sorted at every
level, separators ``,`` and ``:`` (no insignificant whitespace), non-ASCII characters as UTF-8
(not ``\\u`` escapes), and encoded as UTF-8::

    v        1
    seq      gapless sequence number, from 1, in commit order
    prev     hex SHA-256 leaf hash of event seq-1 (64 zeros for the first event)
    time     database time, UTC, "YYYY-MM-DDTHH:MM:SS.ffffffZ"
    actor    {"id": int|null, "name": str, "kind": "human"|"service"|"system"|"anonymous"}
    auth     {"session": hex|"", "mfa_method": str, "mfa_age": int|null}
    action   dotted action code from audit.actions
    target   {"type": "app.model"|"", "id": str, "repr": str}
    data     JSON object (before/after values of a change, details)
    ip       str|null    ua  str    request_id  str
    version  code version    env  deployment name
    pipeline {"run_id", "stage", "commit"} for pipeline callers, else {}

leaf hash = SHA-256(0x00 || canonical bytes), as an RFC 6962 Merkle tree leaf.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

FORMAT = "gatehouse-audit-v1"
GENESIS = "0" * 64


def canonical_bytes(payload: dict[str, Any]) -> bytes:
    return json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def format_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# The model fields the canonical form is built from, for readers that fetch rows as tuples.
PAYLOAD_FIELDS = (
    "sequence",
    "prev_hash",
    "occurred_at",
    "actor_id",
    "actor_name",
    "actor_kind",
    "session_hash",
    "mfa_method",
    "mfa_age_seconds",
    "action",
    "target_type",
    "target_id",
    "target_repr",
    "data",
    "ip",
    "user_agent",
    "request_id",
    "code_version",
    "deployment",
    "pipeline",
)


def event_payload(event: Any) -> dict[str, Any]:
    """The canonical dictionary of an ``AuditEvent`` (saved or about to be)."""
    return {
        "v": 1,
        "seq": event.sequence,
        "prev": event.prev_hash,
        "time": format_time(event.occurred_at),
        "actor": {"id": event.actor_id, "name": event.actor_name, "kind": event.actor_kind},
        "auth": {
            "session": event.session_hash,
            "mfa_method": event.mfa_method,
            "mfa_age": event.mfa_age_seconds,
        },
        "action": event.action,
        "target": {"type": event.target_type, "id": event.target_id, "repr": event.target_repr},
        "data": event.data,
        "ip": event.ip or None,
        "ua": event.user_agent,
        "request_id": event.request_id,
        "version": event.code_version,
        "env": event.deployment,
        "pipeline": event.pipeline,
    }
