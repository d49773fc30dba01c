"""The manual connector: a task list for administrators, marked done by a person."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from accessreq.connectors import DeliveryResult
    from accessreq.models import ProvisioningTask


def deliver(task: ProvisioningTask) -> DeliveryResult | None:
    """Nothing to send: the task waits on the provisioning page until someone marks it done."""
    return None
