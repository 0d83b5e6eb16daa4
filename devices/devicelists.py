"""Signed device lists: every list is checked with protocol/ before it is stored as the
account's current one (clients check again themselves, docs/protocol.md section 4)."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from devices import events
from devices.models import Device, DeviceList
from devices.selectors import active_device_ids, current_device_list, identity_keys
from protocol import devicelist as dl
from protocol.exceptions import ProtocolError
from web.errors import AppError, Forbidden


class DeviceListRefused(AppError):
    code = "device_list_refused"
    status = 409


def _protocol_refusal(error: ProtocolError, what: str) -> AppError:
    return DeviceListRefused(f"{what}: {error}", code=error.code)


def device_list_store(
    *,
    user: User,
    device_list: dl.DeviceList,
    expected_ids: set[str],
    reset: bool = False,
    now: datetime | None = None,
) -> DeviceList:
    """Check a list the primary signed and store it as the account's current list.

    The server refuses what it can see is wrong (bad signatures, rollback, a key that changed,
    a device set other than the account's active devices); clients check again themselves.
    """
    current = current_device_list(user)
    if device_list.account_id != user.username:
        raise DeviceListRefused(
            f"The list is for account {device_list.account_id!r}, not {user.username!r}.",
            code="wrong_account",
        )
    try:
        dl.verify_device_list(
            device_list,
            expected_account_key=None if (current is None or reset) else bytes(current.account_key),
            last_accepted_version=None if current is None else current.version,
            known_devices=identity_keys(user),
        )
    except ProtocolError as error:
        raise _protocol_refusal(error, "Device list refused") from None
    listed = {d.device_id for d in device_list.devices}
    if listed != expected_ids:
        raise DeviceListRefused(
            "The list's devices differ from the account's devices.",
            code="device_list_mismatch",
            data={"missing": sorted(expected_ids - listed), "extra": sorted(listed - expected_ids)},
        )
    return DeviceList.objects.create(
        user=user,
        version=device_list.version,
        account_key=device_list.account_key,
        body=device_list.to_dict(),
        list_hash=dl.device_list_hash(device_list),
        created_at=now or timezone.now(),
    )


def device_list_publish(
    *, device: Device, device_list: dl.DeviceList, now: datetime | None = None
) -> DeviceList:
    """The primary re-signs its list after server-side suspensions (a companion logged itself
    out, or the expiry job): the list must hold exactly the active devices."""
    if not device.is_primary:
        raise Forbidden("Only the primary device signs the device list.", code="not_primary")
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=device.user_id).first()
        stored = device_list_store(
            user=device.user,
            device_list=device_list,
            expected_ids=active_device_ids(device.user),
            now=now,
        )
        events.send_on_commit(
            events.user_group(device.user_id),
            {"type": events.DEVICES_CHANGED, "reason": "list_published", "device_id": device.id},
        )
    return stored
