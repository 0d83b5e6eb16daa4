"""Reads of the devices app, shaped for the API."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import User
from devices.linkstates import UNFINISHED
from devices.models import (
    Device,
    DeviceList,
    DeviceSocket,
    KemPrekey,
    LastResortKemPrekey,
    LinkSession,
    OneTimePrekey,
    ServerProcess,
    link_secret_hash,
)
from protocol.encoding import b64u_encode
from web.errors import NotFound

PRESENCE_WINDOW = timedelta(seconds=90)


def device_get_for_user(*, user: User, device_id: str) -> Device | None:
    """The same None for "missing" and "not yours"."""
    return Device.objects.filter(pk=device_id, user=user).first()


def device_for_session(*, user: User, device_id: str, session_key: str | None) -> Device | None:
    """The device a signed-in session belongs to, if it is still bound to it and not revoked."""
    return (
        Device.objects.select_related("user")
        .filter(pk=device_id, user=user, revoked_at__isnull=True, sessions__session_key=session_key)
        .first()
    )


def active_device_ids(user: User) -> set[str]:
    return set(
        Device.objects.filter(user=user, revoked_at__isnull=True).values_list("id", flat=True)
    )


def active_identity_keys(user_id: int) -> set[bytes]:
    """The identity keys of the account's devices that are not logged out."""
    keys = Device.objects.filter(user_id=user_id, revoked_at__isnull=True)
    return {bytes(k) for k in keys.values_list("identity_key", flat=True)}


def identity_keys(user: User) -> dict[str, bytes]:
    """The identity key of every device the account ever had, revoked ones too."""
    return {d.id: bytes(d.identity_key) for d in Device.objects.filter(user=user)}


def companion_count(user: User) -> int:
    return Device.objects.filter(user=user, revoked_at__isnull=True, is_primary=False).count()


def account_full(user: User) -> bool:
    """The account has PARLEY_MAX_COMPANIONS companions: no new device may be linked."""
    return companion_count(user) >= settings.PARLEY_MAX_COMPANIONS


def server_process_timeout() -> timedelta:
    """A server process silent for three heartbeats is dead: a killed node says nothing."""
    return timedelta(seconds=3 * settings.PARLEY_HEARTBEAT_SECONDS)


def live_server_process_ids(*, now: datetime) -> QuerySet[ServerProcess]:
    return ServerProcess.objects.filter(beat_at__gte=now - server_process_timeout()).values("id")


def active_device_ids_online(user: User, *, now: datetime | None = None) -> set[str]:
    """Devices with a socket open on a live server process and used within the window."""
    moment = now or timezone.now()
    return set(
        DeviceSocket.objects.filter(
            device__user=user,
            seen_at__gte=moment - PRESENCE_WINDOW,
            process_id__in=live_server_process_ids(now=moment),
        ).values_list("device_id", flat=True)
    )


def veto_until(*, device: Device, by: Device, now: datetime | None = None) -> datetime | None:
    """Until when `by` may remove `device` although it is not the primary (the veto window):
    a companion linked less than PARLEY_VETO_WINDOW_SECONDS ago, after `by` itself was. A
    device linked later cannot evict the older ones, so a phished device cannot fight back."""
    if device.is_primary or device.pk == by.pk or device.added_at <= by.added_at:
        return None
    until = device.added_at + timedelta(seconds=settings.PARLEY_VETO_WINDOW_SECONDS)
    return until if (now or timezone.now()) < until else None


def device_summaries(*, user: User, current: Device | None) -> list[dict[str, Any]]:
    online = active_device_ids_online(user)
    now = timezone.now()
    devices = Device.objects.filter(user=user, revoked_at__isnull=True).order_by(
        "-is_primary", "added_at"
    )
    return [
        {
            "device_id": d.id,
            "name": d.name,
            "platform": d.platform,
            "is_primary": d.is_primary,
            "identity_key": b64u_encode(bytes(d.identity_key)),
            "added_at": d.added_at.isoformat(),
            "last_seen_on": d.last_seen_on.isoformat(),
            "active_now": d.id in online,
            "this_device": current is not None and d.id == current.id,
            "veto_until": _iso(veto_until(device=d, by=current, now=now) if current else None),
        }
        for d in devices
    ]


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def current_device_list(user: User) -> DeviceList | None:
    return DeviceList.objects.filter(user=user).order_by("-version").first()


def suspended_device_ids(user: User) -> list[str]:
    """Devices the server has cut off that the current signed list still names."""
    current = current_device_list(user)
    if current is None:
        return []
    return sorted(set(current.listed_device_ids()) - active_device_ids(user))


def device_list_document(user: User) -> dict[str, Any] | None:
    current = current_device_list(user)
    if current is None:
        return None
    return {"device_list": current.body, "suspended": suspended_device_ids(user)}


def one_time_prekey_count(device_id: str) -> int:
    return OneTimePrekey.objects.filter(device_id=device_id).count()


def kem_prekey_count(device_id: str) -> int:
    return KemPrekey.objects.filter(device_id=device_id).count()


def last_resort_kem_prekey_id(device_id: str) -> int | None:
    return (
        LastResortKemPrekey.objects.filter(device_id=device_id)
        .values_list("key_id", flat=True)
        .first()
    )


def prekey_counts(device_id: str) -> dict[str, Any]:
    """What GET /api/prekeys answers: the one-time prekeys and one-time KEM prekeys stored,
    and the last-resort KEM prekey's id (docs/protocol.md 19, 27.6)."""
    return {
        "one_time_prekeys": one_time_prekey_count(device_id),
        "kem_prekeys": kem_prekey_count(device_id),
        "last_resort_kem_prekey": last_resort_kem_prekey_id(device_id),
    }


def prekeys_low(device_id: str) -> dict[str, int | None] | None:
    """`{remaining, kem_remaining}` of the `prekeys_low` event when either pool of the device
    is at PARLEY_PREKEYS_LOW or below, else None. `kem_remaining` is None for a device with
    no last-resort KEM prekey: it published none (version 1), so its KEM pool is never low."""
    low = settings.PARLEY_PREKEYS_LOW
    remaining = one_time_prekey_count(device_id)
    kem_remaining = None
    if LastResortKemPrekey.objects.filter(device_id=device_id).exists():
        kem_remaining = kem_prekey_count(device_id)
    if remaining <= low or (kem_remaining is not None and kem_remaining <= low):
        return {"remaining": remaining, "kem_remaining": kem_remaining}
    return None


def link_session_for_browser(*, link_id: str, browser_secret: str | None) -> LinkSession:
    """The link session, only for the browser that opened it (a photographed QR is not enough)."""
    link = LinkSession.objects.filter(pk=link_id).first()
    if (
        link is None
        or not browser_secret
        or not secrets.compare_digest(
            bytes(link.browser_secret_hash), link_secret_hash(browser_secret)
        )
    ):
        raise NotFound("This link request does not exist in this browser.", code="link_not_found")
    return link


def link_summary_for_primary(link: LinkSession) -> dict[str, Any]:
    return {
        "link_id": link.id,
        "state": link_state(link),
        "device_id": link.device_id,
        "name": link.name,
        "platform": link.platform,
        "created_at": link.created_at.isoformat(),
        "expires_at": link.expires_at.isoformat(),
        "device_signature": b64u_encode(bytes(link.device_signature))
        if link.device_signature
        else None,
    }


def link_state(link: LinkSession, *, now: datetime | None = None) -> str:
    """The state a client sees: an unfinished request past its expiry is "expired"."""
    if link.state in UNFINISHED and link.expires_at <= (now or timezone.now()):
        return "expired"
    return link.state


def link_summary_for_browser(link: LinkSession) -> dict[str, Any]:
    return {
        "link_id": link.id,
        "state": link_state(link),
        "server_time": timezone.now().isoformat(),
        "expires_at": link.expires_at.isoformat(),
        "provisioning": b64u_encode(bytes(link.provisioning)) if link.provisioning else None,
        "token_nonce": b64u_encode(bytes(link.token_nonce)) if link.token_nonce else None,
        "account_display_name": link.user.display_name if link.user_id else None,
        # History is accepted only from this device (DESIGN §7, messages).
        "approving_device": link.approving_device_id,
        "send_history": link.send_history,
    }
