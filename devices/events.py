"""Channel-layer groups and events, named once. Services send them only after commit, and
only as doorbells: what they announce is always also in the database."""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

# Event types: Channels calls the consumer method named like the type with "." as "_"
# (`queue.ready` -> `queue_ready`).
QUEUE_READY = "queue.ready"  # new envelopes for a device, carried in the event
DEVICE_REVOKED = "device.revoked"
DEVICES_CHANGED = "devices.changed"
PREKEYS_LOW = "prekeys.low"
LINK_SIGNED = "link.signed"  # to the approving primary's devices
LINK_CHANGED = "link.changed"  # to the new browser waiting on its link request
STATUS_PONG = "status.pong"  # the status socket's round trip through the layer
STATE_CHANGED = "state.changed"  # the account's state log has a new version (messaging)
ACCOUNT_RENAMED = "account.renamed"  # the account's display name changed
GROUP_CHANGED = "group.changed"  # a group's membership log has a new entry (messaging)


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def device_group(device_id: str) -> str:
    return f"device.{device_id}"


def link_group(link_id: str) -> str:
    return f"link.{link_id}"


def send_on_commit(group: str, event: dict[str, Any]) -> None:
    """Send `event` (whose `type` names the consumer handler) to `group` once the current
    transaction commits; a rolled-back change announces nothing."""

    def send() -> None:
        layer = get_channel_layer()
        if layer is not None:
            async_to_sync(layer.group_send)(group, event)

    transaction.on_commit(send)
