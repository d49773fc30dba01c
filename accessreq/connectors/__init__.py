"""Connectors carry out grants and revocations in the systems themselves.

A connector kind has one function, ``deliver(task) -> DeliveryResult | None``: the webhook
connector POSTs a signed event and reports what came back; the manual connector returns None,
because a person does the work and marks the task done in the portal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from accessreq.models import ProvisioningTask


@dataclass(frozen=True)
class DeliveryResult:
    """What one attempt to reach a connector produced."""

    ok: bool
    status: int | None = None
    body: str = ""
    error: str = ""


Deliver = Callable[["ProvisioningTask"], DeliveryResult | None]


def backend(kind: str) -> Deliver:
    """The delivery function of connector ``kind``."""
    from accessreq.connectors import manual, webhook

    backends: dict[str, Deliver] = {"manual": manual.deliver, "webhook": webhook.deliver}
    try:
        return backends[kind]
    except KeyError:
        raise ValueError(f"Unknown connector kind {kind!r}") from None
