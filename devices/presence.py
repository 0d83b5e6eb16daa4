"""Socket-side reads and writes for devices: who a socket belongs to, and "active now".

Async wrappers around the ORM (database_sync_to_async), so consumers never block the loop.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from channels.db import database_sync_to_async
from django.db import connection, transaction
from django.utils import timezone

from devices.auth import SESSION_DEVICE_KEY
from devices.models import Device, DeviceSocket, ServerProcess
from devices.selectors import (
    device_for_session,
    link_session_for_browser,
    link_state,
    live_server_process_ids,
    prekeys_low,
    server_process_timeout,
)
from devices.services import seen_day
from web.errors import AppError

# This server process. Its socket rows count while it beats (ServerProcess); rows of a
# process that went silent are anybody's to reap.
PROCESS_ID = uuid.uuid4().hex


@database_sync_to_async
def socket_device(scope: dict[str, Any]) -> Device | None:
    session = scope.get("session")
    user = scope.get("user")
    if session is None or user is None or not user.is_authenticated:
        return None
    return device_for_session(
        user=user, device_id=session.get(SESSION_DEVICE_KEY), session_key=session.session_key
    )


def _socket_store(*, device_id: str, channel_name: str, now: datetime) -> None:
    # One transaction with the beat, so a reaper never sees this row beside a stale beat.
    with transaction.atomic():
        _beat(now)
        DeviceSocket.objects.update_or_create(
            channel_name=channel_name,
            defaults={"device_id": device_id, "process_id": PROCESS_ID, "seen_at": now},
        )


def _beat(now: datetime) -> None:
    if not ServerProcess.objects.filter(pk=PROCESS_ID).update(beat_at=now):
        ServerProcess.objects.update_or_create(pk=PROCESS_ID, defaults={"beat_at": now})


@database_sync_to_async
def socket_opened(*, device_id: str, channel_name: str) -> dict[str, int | None] | None:
    """Store the socket's row and the day its device was seen; returns the `prekeys_low`
    event's `{remaining, kem_remaining}` if either of the device's pools is at or below
    PARLEY_PREKEYS_LOW (told on connect, so a device offline when it ran low learns it). One
    trip to the database thread: a node taking back thousands of devices at once (another node
    stopped) pays it per socket."""
    now = timezone.now()
    _socket_store(device_id=device_id, channel_name=channel_name, now=now)
    _seen(device_id, now)
    return prekeys_low(device_id)


@database_sync_to_async
def socket_closed(*, device_id: str, channel_name: str) -> None:
    DeviceSocket.objects.filter(channel_name=channel_name).delete()
    _seen(device_id, timezone.now())


def _seen(device_id: str, now: datetime) -> None:
    """The day only: an open socket is all delivery needs, and "active now" is the socket row."""
    day = seen_day(now)
    Device.objects.filter(pk=device_id, revoked_at__isnull=True).exclude(last_seen_on=day).update(
        last_seen_on=day
    )


_CHUNK = 5000  # ids per IN (...), far below SQLite's limit on parameters


def _chunks(items: list[str]) -> list[list[str]]:
    return [items[i : i + _CHUNK] for i in range(0, len(items), _CHUNK)]


_DEVICES = Device._meta.db_table
_SOCKETS = DeviceSocket._meta.db_table


def _in(statement: str, values: list[str], params: list[Any] | None = None) -> Any:
    """`statement IN (values)`, run as SQL: the ORM prepares an IN list's values one by one,
    which for a beat's thousands of ids cost more than the statements (bench/idle_sockets.py).
    A query returns its rows, anything else the number of rows it changed."""
    marks = ", ".join(["%s"] * len(values))
    with connection.cursor() as cursor:
        cursor.execute(f"{statement} IN ({marks})", [*(params or []), *values])
        return cursor.fetchall() if cursor.description else cursor.rowcount


@database_sync_to_async
def process_beat(*, pinged: dict[str, str], connected: list[str]) -> set[str]:
    """The process's heartbeat, every PARLEY_HEARTBEAT_SECONDS while it holds sockets: say it
    is alive, mark the sockets that pinged since the last beat (`pinged`: channel name ->
    device id) as seen now, and the day their devices were last seen, then reap the rows of
    silent processes. A statement per few thousand sockets instead of writes on every ping
    (a device pings every 25 s: 600 writes a second for 15,000 of them). Returns the devices
    of `connected` that were logged out meanwhile, whose push may have been lost (the layer
    is only a doorbell)."""
    now = timezone.now()
    active: set[str] = set()
    for chunk in _chunks(sorted(set(connected) | set(pinged.values()))):
        active.update(
            row[0]
            for row in _in(f"SELECT id FROM {_DEVICES} WHERE revoked_at IS NULL AND id", chunk)
        )
    channels = [c for c, device_id in pinged.items() if device_id in active]
    seen = connection.ops.adapt_datetimefield_value(now)
    with transaction.atomic():
        _beat(now)
        missing: list[str] = []
        for chunk in _chunks(channels):
            updated = _in(f"UPDATE {_SOCKETS} SET seen_at = %s WHERE channel_name", chunk, [seen])
            if updated != len(chunk):
                present = DeviceSocket.objects.filter(channel_name__in=chunk)
                missing += set(chunk) - set(present.values_list("channel_name", flat=True))
        # Reaped while this process could not beat in time: the socket is still open.
        DeviceSocket.objects.bulk_create(
            [
                DeviceSocket(
                    channel_name=c, device_id=pinged[c], process_id=PROCESS_ID, seen_at=now
                )
                for c in missing
            ]
        )
    day = connection.ops.adapt_datefield_value(seen_day(now))
    for chunk in _chunks(sorted({pinged[c] for c in channels})):
        _in(
            f"UPDATE {_DEVICES} SET last_seen_on = %s"
            " WHERE (last_seen_on IS NULL OR last_seen_on <> %s) AND id",
            chunk,
            [day, day],
        )
    sockets_reap(now=now)
    return set(connected) - active


def sockets_reap(*, now: datetime | None = None) -> int:
    """Delete the socket rows of server processes that stopped beating (a killed node cannot
    delete its own), then those processes. Returns the number of rows deleted."""
    moment = now or timezone.now()
    reaped, _ = DeviceSocket.objects.exclude(
        process_id__in=live_server_process_ids(now=moment)
    ).delete()
    ServerProcess.objects.filter(beat_at__lt=moment - server_process_timeout()).delete()
    return reaped


@database_sync_to_async
def link_state_for_browser(scope: dict[str, Any], link_id: str) -> str | None:
    cookies = scope.get("cookies") or {}
    try:
        link = link_session_for_browser(link_id=link_id, browser_secret=cookies.get("parley_link"))
    except AppError:
        return None
    return link_state(link)
