"""Removing devices: the device's own records (devices.revocation), its envelope queue
(messaging) and the events, in one transaction. Every removal goes through `device_remove`."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from devices.devicelists import DeviceListRefused, device_list_store
from devices.models import Device
from devices.revocation import device_cut_off, revocation_reason
from devices.selectors import active_device_ids
from devices.services import seen_day
from messaging.services import queue_drop_for_device
from protocol import devicelist as dl


def device_remove(device: Device, *, reason: str, moment: datetime) -> None:
    """Cut a device off, in the caller's transaction: sessions, prekeys and queue gone, its
    sockets closed and the account's other devices told after commit."""
    device_cut_off(device, reason=reason, moment=moment)
    queue_drop_for_device(device=device)


def account_reset(*, user: User, now: datetime | None = None) -> None:
    """Log out every device of the account (the primary left, or a new primary took over).
    Runs inside the caller's transaction."""
    moment = now or timezone.now()
    for device in Device.objects.filter(user=user, revoked_at__isnull=True):
        device_remove(device, reason="account_reset", moment=moment)


def device_revoke(
    *, actor: Device, target: Device, device_list: dl.DeviceList | None, now: datetime | None = None
) -> None:
    """Log a device out, as `devices.revocation.revocation_reason` allows: the primary
    removing a companion signs a list without it (`device_list`, stored here); a device
    logging itself out and a removal in the veto window are server-side suspensions until
    the primary re-signs; the primary logging itself out resets the account."""
    moment = now or timezone.now()
    reason = revocation_reason(actor=actor, target=target, now=moment)
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=actor.user_id).first()
        if reason == "account_reset":
            account_reset(user=actor.user, now=moment)
            return
        if reason == "removed_by_primary":
            if device_list is None:
                raise DeviceListRefused(
                    "Removing a device needs a new signed device list without it.",
                    code="device_list_required",
                )
            device_list_store(
                user=actor.user,
                device_list=device_list,
                expected_ids=active_device_ids(actor.user) - {target.pk},
                now=moment,
            )
        device_remove(target, reason=reason, moment=moment)


def companions_of_idle_primaries_remove(*, now: datetime | None = None) -> int:
    """Log out the companions of accounts whose primary has not been used for
    PARLEY_PRIMARY_INACTIVITY_DAYS (a server-side suspension: the primary re-signs later).
    Returns how many were logged out."""
    moment = now or timezone.now()
    # the server keeps only the day a device was last seen: a primary seen on day D is
    # idle once D is more than PARLEY_PRIMARY_INACTIVITY_DAYS whole days back
    cutoff = seen_day(moment - timedelta(days=settings.PARLEY_PRIMARY_INACTIVITY_DAYS))
    idle_accounts = Device.objects.filter(
        is_primary=True, revoked_at__isnull=True, last_seen_on__lt=cutoff
    ).values_list("user_id", flat=True)
    logged_out = 0
    with transaction.atomic():
        for companion in Device.objects.filter(
            user_id__in=list(idle_accounts), is_primary=False, revoked_at__isnull=True
        ):
            device_remove(companion, reason="primary_inactive", moment=moment)
            logged_out += 1
    return logged_out
