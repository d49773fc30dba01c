"""The webhook connector: a JSON event POSTed to a URL, signed with HMAC-SHA256.

Headers sent with each delivery:

- ``X-Gatehouse-Event``: ``grant.activated``, ``grant.expired`` or ``grant.revoked``
- ``X-Gatehouse-Delivery``: a stable id; a retried delivery repeats it, so receivers can dedupe
- ``X-Gatehouse-Timestamp``: Unix seconds when this attempt was signed
- ``X-Gatehouse-Signature``: ``sha256=`` + hex HMAC-SHA256 over ``<timestamp>.<body>`` with the
  connector's secret

Any 2xx answer confirms the operation; redirects are not followed (a 3xx counts as a failure).
Receivers check the signature with :func:`verify` and refuse timestamps older than a few
minutes.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

from accessreq.connectors import DeliveryResult

if TYPE_CHECKING:
    from accessreq.models import ProvisioningTask

_READ_LIMIT = 4096


def payload(task: ProvisioningTask) -> dict[str, Any]:
    grant = task.grant
    entitlement = grant.entitlement
    return {
        "delivery": f"gatehouse-task-{task.pk}",
        "event": f"grant.{task.cause}",
        "operation": task.operation,
        "grant": {
            "id": grant.pk,
            "beneficiary": {"id": grant.beneficiary_id, "email": grant.beneficiary.email},
            "system": entitlement.system.slug,
            "environment": entitlement.environment.slug,
            "entitlement": entitlement.slug,
            "scopes": sorted(s.slug for s in entitlement.scopes.all()),
            "starts_at": grant.starts_at.isoformat(),
            "expires_at": grant.expires_at.isoformat(),
            "break_glass": grant.break_glass,
        },
    }


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str, *, max_age: int = 300) -> bool:
    """What a receiver runs: the signature matches and the timestamp is recent."""
    try:
        age = abs(time.time() - int(timestamp))
    except ValueError:
        return False
    expected = sign(secret, timestamp, body).encode()
    # Bytes, so a header with non-ASCII characters is a mismatch rather than a TypeError.
    return age <= max_age and hmac.compare_digest(expected, signature.encode("utf-8", "replace"))


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is not a confirmation: urllib would follow it as a GET without the signed
    body, so a 3xx is reported as the answer it is."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def post_signed(
    url: str, *, secret: str, body: bytes, headers: dict[str, str], timeout: float
) -> DeliveryResult:
    """POST ``body`` to ``url`` signed with ``secret`` (the headers above) and report the
    answer; never raises for network trouble. Also used for deployment decision callbacks."""
    timestamp = str(int(time.time()))
    request = urllib.request.Request(  # noqa: S310 - the URL is a checked http(s) URL
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "Gatehouse-Webhook/1",
            **headers,
            "X-Gatehouse-Timestamp": timestamp,
            "X-Gatehouse-Signature": sign(secret, timestamp, body),
        },
    )
    try:
        with _opener.open(request, timeout=timeout) as response:
            text = response.read(_READ_LIMIT).decode("utf-8", "replace")
            return DeliveryResult(
                ok=200 <= response.status < 300, status=response.status, body=text
            )
    except urllib.error.HTTPError as error:
        text = error.read(_READ_LIMIT).decode("utf-8", "replace") if error.fp else ""
        return DeliveryResult(ok=False, status=error.code, body=text, error=f"HTTP {error.code}")
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:
        # Refused, unreachable, timed out, a garbled answer: all are failed attempts, not crashes.
        reason = getattr(error, "reason", error)
        return DeliveryResult(ok=False, error=f"{type(error).__name__}: {reason}")


def deliver(task: ProvisioningTask) -> DeliveryResult:
    """POST the task's event once and report the answer; never raises for network trouble."""
    connector = task.connector
    body = json.dumps(payload(task), sort_keys=True, separators=(",", ":")).encode()
    return post_signed(
        connector.url,
        secret=connector.secret(),
        body=body,
        headers={
            "X-Gatehouse-Event": f"grant.{task.cause}",
            "X-Gatehouse-Delivery": f"gatehouse-task-{task.pk}",
        },
        timeout=connector.timeout_seconds,
    )
