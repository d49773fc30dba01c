"""Signed decision callbacks to the pipeline that opened a deployment approval.

The body is the deployment as ``GET /api/v1/deployments/{id}`` answers it, under ``event``
(``deployment.approved``, ``deployment.denied`` or ``deployment.expired``), POSTed with the
provisioning webhook's signature: ``X-Gatehouse-Signature: sha256=HMAC(secret,
"<timestamp>.<body>")``, where the secret is the ``callback_secret`` returned once when the
deployment was opened. ``X-Gatehouse-Delivery`` is stable across retries. Any 2xx confirms;
redirects are not followed. Delivery bookkeeping is telemetry kept out of the history.
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.utils import timezone

from accessreq.connectors.webhook import post_signed
from accessreq.models import DeploymentApproval
from accessreq.services.common import now
from accessreq.services.deployments import deployment_as_data

logger = logging.getLogger("gatehouse.deployments")

CALLBACK_TIMEOUT_SECONDS = 10


def deployment_callback_attempt(*, deployment_id: int, state: str) -> bool | None:
    """Deliver the decision callback once: True when confirmed, False when it should be tried
    again, None when there is nothing (more) to send."""
    deployment = (
        DeploymentApproval.objects.select_related("service_account", "system", "environment")
        .filter(pk=deployment_id, callback_delivered_at__isnull=True)
        .exclude(callback_url="")
        .first()
    )
    if deployment is None:
        return None
    if deployment.callback_attempts >= settings.DEPLOYMENT_CALLBACK_ATTEMPTS:
        return None
    body = json.dumps(
        {
            "event": f"deployment.{state}",
            "delivery": f"gatehouse-deployment-{deployment.pk}-{state}",
            "deployment": deployment_as_data(deployment, at=now()),
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    result = post_signed(
        deployment.callback_url,
        secret=deployment.callback_secret(),
        body=body,
        headers={
            "X-Gatehouse-Event": f"deployment.{state}",
            "X-Gatehouse-Delivery": f"gatehouse-deployment-{deployment.pk}-{state}",
        },
        timeout=CALLBACK_TIMEOUT_SECONDS,
    )
    attempts = deployment.callback_attempts + 1
    # Telemetry columns only (excluded from the history), so a plain conditional update is right.
    DeploymentApproval.objects.filter(pk=deployment.pk).update(
        callback_attempts=attempts,
        callback_delivered_at=timezone.now() if result.ok else None,
        callback_error="" if result.ok else (result.error or f"HTTP {result.status}")[:300],
    )
    if result.ok:
        return True
    logger.warning(
        "Deployment %s callback attempt %s failed: %s", deployment.pk, attempts, result.error
    )
    return False if attempts < settings.DEPLOYMENT_CALLBACK_ATTEMPTS else None
