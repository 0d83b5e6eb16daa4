"""The per-device queue of opaque envelopes, and history blobs. The server never sees
what is inside either."""

from __future__ import annotations

from django.db import models

from devices.models import Device


class QueuedEnvelope(models.Model):
    """One ciphertext waiting for one device; deleted when that device acknowledges it.
    The primary key is the device's queue position (`seq` on the wire)."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="queue")
    envelope_id = models.CharField(max_length=64)
    sender = models.CharField(max_length=32)
    sender_device_id = models.CharField(max_length=32)
    ciphertext = models.BinaryField(max_length=70000)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["device", "sender_device_id", "envelope_id"],
                name="unique_envelope_per_device",
            )
        ]
        indexes = [models.Index(fields=["device", "id"])]


class SentEnvelope(models.Model):
    """The replay memory: an envelope id a sender device had accepted, kept for the
    retention window (30 days) so a resend stores nothing even after its rows were acked."""

    pk = models.CompositePrimaryKey("sender_device_id", "envelope_id")
    sender_device_id = models.CharField(max_length=32)
    envelope_id = models.CharField(max_length=64)
    accepted_at = models.DateTimeField(db_index=True)


class HistoryBlob(models.Model):
    """An encrypted history bundle (one secretstream) for one new device; deleted once fetched."""

    id = models.CharField(primary_key=True, max_length=32)
    from_device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="+")
    to_device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="+")
    data = models.BinaryField()
    created_at = models.DateTimeField()
