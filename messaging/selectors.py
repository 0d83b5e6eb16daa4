"""Reads of the messaging app: a device's queue, in order, and which devices have envelopes
waiting. Plain SQL on the hot path, like the writes in messaging/services.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from messaging.models import QueuedEnvelope
from protocol.encoding import b64u_encode


@dataclass(frozen=True)
class Delivery:
    seq: int
    envelope_id: str
    sender: str
    sender_device: str
    ciphertext: bytes
    sent_at: datetime

    def to_frame(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "id": self.envelope_id,
            "sender": self.sender,
            "sender_device": self.sender_device,
            "ciphertext": b64u_encode(self.ciphertext),
            "sent_at": int(self.sent_at.timestamp() * 1000),
        }


def devices_with_waiting_envelopes(*, device_ids: list[str], older_than_seconds: float) -> set[str]:
    """Which of these devices have envelopes queued for longer than the given time."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    found: set[str] = set()
    for start in range(0, len(device_ids), 5000):
        chunk = device_ids[start : start + 5000]
        found.update(
            QueuedEnvelope.objects.filter(device_id__in=chunk, created_at__lte=cutoff)
            .values_list("device_id", flat=True)
            .distinct()
        )
    return found


def queue_batch(*, device_id: str, after_seq: int, limit: int) -> list[Delivery]:
    """The device's next envelopes after `after_seq`, in queue order."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, envelope_id, sender, sender_device_id, ciphertext, created_at FROM messaging_queuedenvelope"
            " WHERE device_id = %s AND id > %s ORDER BY id LIMIT %s",
            [device_id, after_seq, limit],
        )
        rows = cursor.fetchall()
    return [
        Delivery(
            seq=r[0],
            envelope_id=r[1],
            sender=r[2],
            sender_device=r[3],
            ciphertext=bytes(r[4]),
            sent_at=_as_datetime(r[5]),
        )
        for r in rows
    ]


def queued_ids(*, device_id: str, upto_seq: int, limit: int) -> list[int]:
    """Queue positions of the device's rows at or below `upto_seq` (oldest first)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM messaging_queuedenvelope WHERE device_id = %s AND id <= %s ORDER BY id LIMIT %s",
            [device_id, upto_seq, limit],
        )
        return [row[0] for row in cursor.fetchall()]


def _as_datetime(value: datetime | str) -> datetime:
    """SQLite hands raw queries a string; PostgreSQL a datetime."""
    if isinstance(value, str):
        parsed = parse_datetime(value)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return value
