"""Async adapters of the queue services for consumers (never block the event loop)."""

from __future__ import annotations

from channels.db import database_sync_to_async

from config.errors import Forbidden
from devices.models import Device
from messaging import services
from messaging.schemas import SendRequest


@database_sync_to_async
def accept(*, device_id: str, send: SendRequest) -> list[str]:
    sender = (
        Device.objects.select_related("user").filter(pk=device_id, revoked_at__isnull=True).first()
    )
    if sender is None:
        raise Forbidden("This device was logged out.", code="device_revoked")
    return services.envelope_accept(sender_device=sender, send=send)


batch = database_sync_to_async(services.queue_batch)
ack = database_sync_to_async(services.envelope_ack)
