"""The per-device queue of opaque envelopes. The server never sees what is inside."""

from __future__ import annotations

from django.db import models

from devices.models import Device


class QueuedEnvelope(models.Model):
    """One ciphertext waiting for one device; deleted when that device acknowledges it."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="queue")
    envelope_id = models.CharField(max_length=64)
    sender_device_id = models.CharField(max_length=32)
    ciphertext = models.BinaryField(max_length=65536)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["device", "sender_device_id", "envelope_id"],
                name="unique_envelope_per_device",
            )
        ]
        indexes = [models.Index(fields=["device", "id"])]
