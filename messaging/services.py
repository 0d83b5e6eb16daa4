"""Every state change of the envelope queue: one function each."""

from __future__ import annotations

from devices.models import Device
from messaging.models import QueuedEnvelope


def queue_drop_for_device(*, device: Device) -> int:
    """A logged-out device's queue is dropped: nobody will ever fetch it."""
    deleted, _ = QueuedEnvelope.objects.filter(device=device).delete()
    return deleted
