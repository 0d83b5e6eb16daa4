"""The key directory's prekeys: uploads checked against the identity key, bundles handed out
with one-time prekeys claimed at most once and within each account's fair share."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from devices import events
from devices.models import Device, OneTimePrekey, PrekeyClaim, SignedPrekey
from devices.schemas import OneTimePrekeyIn, SignedPrekeyIn
from devices.selectors import one_time_prekey_count
from protocol.exceptions import ProtocolError
from protocol.keys import PrekeyBundle, signed_prekey_bytes
from protocol.primitives import ed25519_verify
from web.errors import AppError, Conflict


def prekeys_store(
    *,
    device: Device,
    signed_prekey: SignedPrekeyIn | None,
    one_time_prekeys: list[OneTimePrekeyIn],
    now: datetime | None = None,
) -> None:
    """Store a device's signed prekey (checked against its identity key) and one-time prekeys."""
    if signed_prekey is not None:
        try:
            ed25519_verify(
                bytes(device.identity_key),
                signed_prekey_bytes(signed_prekey.key_id, signed_prekey.public_key),
                signed_prekey.signature,
                what="signed prekey signature",
            )
        except ProtocolError as error:
            raise AppError(str(error), code=error.code) from None
        SignedPrekey.objects.update_or_create(
            device=device,
            key_id=signed_prekey.key_id,
            defaults={
                "public_key": signed_prekey.public_key,
                "signature": signed_prekey.signature,
                "created_at": now or timezone.now(),
            },
        )
    existing = set(
        OneTimePrekey.objects.filter(
            device=device, key_id__in=[k.key_id for k in one_time_prekeys]
        ).values_list("key_id", flat=True)
    )
    if existing:
        raise Conflict(
            f"One-time prekey ids already uploaded: {sorted(existing)[:5]}.",
            code="prekey_id_reused",
        )
    OneTimePrekey.objects.bulk_create(
        OneTimePrekey(device=device, key_id=k.key_id, public_key=k.public_key)
        for k in one_time_prekeys
    )


def _take_one_time_prekey(device: Device) -> OneTimePrekey | None:
    """Hand out one one-time prekey at most once, even under concurrent fetches: the row is
    claimed by deleting it, and a lost race (0 rows deleted) tries the next one."""
    for _ in range(5):
        candidate = OneTimePrekey.objects.filter(device=device).order_by("key_id").first()
        if candidate is None:
            return None
        deleted, _ = OneTimePrekey.objects.filter(pk=candidate.pk).delete()
        if deleted:
            return candidate
    return None


def _claim_one_time_prekey(
    device: Device, *, requester_id: int, moment: datetime
) -> OneTimePrekey | None:
    """A one-time prekey for the requester account within its fair share of this device's
    pool: at most PARLEY_PREKEY_SHARE per PARLEY_PREKEY_SHARE_SECONDS for any account but
    the device's own; beyond it None (the bundle then has the signed prekey only). Call
    inside a transaction; the device row is locked so concurrent fetches cannot exceed the
    share. A pool left at PARLEY_PREKEYS_LOW or below is announced to its device on commit."""
    Device.objects.select_for_update().filter(pk=device.pk).first()
    foreign = requester_id != device.user_id
    if foreign:
        since = moment - timedelta(seconds=settings.PARLEY_PREKEY_SHARE_SECONDS)
        claimed = PrekeyClaim.objects.filter(
            device=device, requester_id=requester_id, claimed_at__gt=since
        ).count()
        if claimed >= settings.PARLEY_PREKEY_SHARE:
            return None
    otp = _take_one_time_prekey(device)
    if otp is None:
        return None
    if foreign:
        PrekeyClaim.objects.create(device=device, requester_id=requester_id, claimed_at=moment)
    remaining = one_time_prekey_count(device.pk)
    if remaining <= settings.PARLEY_PREKEYS_LOW:
        events.send_on_commit(
            events.device_group(device.pk), {"type": events.PREKEYS_LOW, "remaining": remaining}
        )
    return otp


def prekey_bundles_take(
    *,
    user: User,
    requester: Device,
    device_ids: list[str] | None = None,
    now: datetime | None = None,
) -> list[PrekeyBundle]:
    """One bundle per active device of `user` (or of those in `device_ids`), each with a fresh
    one-time prekey if any is left and the requester's account is within its fair share;
    never one of the requester itself."""
    moment = now or timezone.now()
    devices = Device.objects.filter(user=user, revoked_at__isnull=True).exclude(pk=requester.pk)
    if device_ids is not None:
        devices = devices.filter(pk__in=device_ids)
    bundles = []
    for device in devices.order_by("id"):
        spk = SignedPrekey.objects.filter(device=device).order_by("-created_at", "-key_id").first()
        if spk is None:
            continue
        with transaction.atomic():
            otp = _claim_one_time_prekey(device, requester_id=requester.user_id, moment=moment)
        bundles.append(
            PrekeyBundle(
                device_id=device.id,
                identity_key=bytes(device.identity_key),
                signed_prekey_id=spk.key_id,
                signed_prekey=bytes(spk.public_key),
                signed_prekey_signature=bytes(spk.signature),
                one_time_prekey_id=None if otp is None else otp.key_id,
                one_time_prekey=None if otp is None else bytes(otp.public_key),
            )
        )
    return bundles


def prekey_claims_expire(*, now: datetime | None = None) -> int:
    """The expiry job: claims older than the fair-share window count for nothing."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.PARLEY_PREKEY_SHARE_SECONDS)
    deleted, _ = PrekeyClaim.objects.filter(claimed_at__lte=cutoff).delete()
    return deleted
