"""Socket-side reads and writes for devices: who a socket belongs to, and "active now".

Async wrappers around the ORM (database_sync_to_async), so consumers never block the loop.
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import timezone

from config.errors import AppError
from devices.auth import SESSION_DEVICE_KEY
from devices.models import Device, DeviceSocket, OneTimePrekey
from devices.selectors import link_state
from devices.services import device_touch, link_session_for_browser


@database_sync_to_async
def socket_device(scope: dict[str, Any]) -> Device | None:
    session = scope.get("session")
    user = scope.get("user")
    if session is None or user is None or not user.is_authenticated:
        return None
    device_id = session.get(SESSION_DEVICE_KEY)
    return Device.objects.filter(
        pk=device_id, user=user, revoked_at__isnull=True, sessions__session_key=session.session_key
    ).first()


@database_sync_to_async
def socket_opened(*, device_id: str, channel_name: str) -> None:
    now = timezone.now()
    DeviceSocket.objects.update_or_create(
        channel_name=channel_name, defaults={"device_id": device_id, "seen_at": now}
    )
    Device.objects.filter(pk=device_id).update(last_used_at=now)


@database_sync_to_async
def socket_closed(*, device_id: str, channel_name: str) -> None:
    DeviceSocket.objects.filter(channel_name=channel_name).delete()
    Device.objects.filter(pk=device_id, revoked_at__isnull=True).update(last_used_at=timezone.now())


@database_sync_to_async
def socket_seen(*, device_id: str, channel_name: str) -> bool:
    """Refresh presence on activity (at most once a minute for last use); False if the device
    was revoked meanwhile (the push may have been lost: the layer is only a doorbell)."""
    device = Device.objects.filter(pk=device_id).first()
    if device is None or device.revoked_at is not None:
        return False
    DeviceSocket.objects.filter(channel_name=channel_name).update(seen_at=timezone.now())
    device_touch(device)
    return True


@database_sync_to_async
def prekeys_low(*, device_id: str) -> int | None:
    """How many one-time prekeys the device has left, if that is at or below
    PARLEY_PREKEYS_LOW (told on connect, so a device offline when it ran low learns it)."""
    remaining = OneTimePrekey.objects.filter(device_id=device_id).count()
    return remaining if remaining <= settings.PARLEY_PREKEYS_LOW else None


@database_sync_to_async
def link_state_for_browser(scope: dict[str, Any], link_id: str) -> str | None:
    cookies = scope.get("cookies") or {}
    try:
        link = link_session_for_browser(link_id=link_id, browser_secret=cookies.get("parley_link"))
    except AppError:
        return None
    return link_state(link)
