"""Logging a device out: who may remove whom, and what removal does to the device's own
records. The whole removal (with the device's envelope queue) is `flows.removal`."""

from __future__ import annotations

from datetime import datetime

from django.contrib.sessions.models import Session

from devices import events
from devices.models import (
    Device,
    DeviceSession,
    KemPrekey,
    LastResortKemPrekey,
    OneTimePrekey,
    SignedPrekey,
)
from devices.selectors import veto_until
from web.errors import Conflict, Forbidden, NotFound


def revocation_reason(*, actor: Device, target: Device, now: datetime) -> str:
    """Why `actor` may log `target` out, as the reason the target is told; otherwise the
    refusal.

    - `account_reset`: the primary logging itself out logs out every device.
    - `logged_out`: a companion logging itself out (a server-side suspension until the
      primary re-signs).
    - `removed_by_primary`: the primary removing a companion (it signs a list without it).
    - `removed_by_device`: an older companion removing a new one in the veto window
      (`selectors.veto_until`); a server-side suspension too.
    """
    if target.user_id != actor.user_id:
        raise NotFound("No such device.", code="device_not_found")
    if target.revoked_at is not None:
        raise Conflict("That device is already logged out.", code="already_logged_out")
    if actor.pk == target.pk:
        return "account_reset" if target.is_primary else "logged_out"
    if actor.is_primary:
        return "removed_by_primary"
    if veto_until(device=target, by=actor, now=now) is not None:
        return "removed_by_device"
    raise Forbidden("Only the primary can log out this device.", code="not_primary")


def device_cut_off(device: Device, *, reason: str, moment: datetime) -> None:
    """The device's side of a removal, in the caller's transaction: revoked, its sessions and
    prekeys gone; its sockets and the account's other devices told after commit."""
    Device.objects.filter(pk=device.pk).update(revoked_at=moment, revoked_reason=reason)
    device.revoked_at, device.revoked_reason = moment, reason
    keys = list(DeviceSession.objects.filter(device=device).values_list("session_key", flat=True))
    Session.objects.filter(session_key__in=keys).delete()
    DeviceSession.objects.filter(device=device).delete()
    OneTimePrekey.objects.filter(device=device).delete()
    SignedPrekey.objects.filter(device=device).delete()
    KemPrekey.objects.filter(device=device).delete()
    LastResortKemPrekey.objects.filter(device=device).delete()
    events.send_on_commit(
        events.device_group(device.id), {"type": events.DEVICE_REVOKED, "reason": reason}
    )
    events.send_on_commit(
        events.user_group(device.user_id),
        {
            "type": events.DEVICES_CHANGED,
            "reason": "revoked",
            "device_id": device.id,
            "device_name": device.name,
        },
    )
