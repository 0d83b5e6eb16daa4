"""The key directory's prekeys: uploads checked against the identity key, bundles handed out
with one-time prekeys and one-time KEM prekeys claimed at most once and within each account's
fair share of each pool (docs/protocol.md 3.2, 27.6)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TypeVar

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from devices import events
from devices.models import (
    Device,
    KemPrekey,
    LastResortKemPrekey,
    OneTimePrekey,
    PrekeyClaim,
    SignedPrekey,
)
from devices.schemas import KemPrekeyIn, OneTimePrekeyIn, SignedPrekeyIn
from devices.selectors import prekeys_low
from protocol.exceptions import ProtocolError
from protocol.keys import PrekeyBundle, PublicKemPrekey, kem_prekey_bytes, signed_prekey_bytes
from protocol.primitives import ed25519_verify, mlkem768_check_public
from web.errors import AppError, Conflict


def prekeys_store(
    *,
    device: Device,
    signed_prekey: SignedPrekeyIn | None,
    one_time_prekeys: list[OneTimePrekeyIn],
    kem_prekeys: Sequence[KemPrekeyIn] = (),
    last_resort_kem_prekey: KemPrekeyIn | None = None,
    now: datetime | None = None,
) -> None:
    """Store a device's signed prekey, one-time prekeys and KEM prekeys (docs/protocol.md 3.2,
    27.6). Every key is checked first (signatures against the identity key, KEM keys as
    ML-KEM-768 keys, ids, the KEM pool's size), then all are written in one transaction: a
    refused request stores nothing."""
    identity_key = bytes(device.identity_key)
    if signed_prekey is not None:
        _verify(
            identity_key,
            signed_prekey_bytes(signed_prekey.key_id, signed_prekey.public_key),
            signed_prekey.signature,
            what="signed prekey signature",
        )
    for kem in kem_prekeys:
        _check_kem_prekey(identity_key, kem, last_resort=False)
    if last_resort_kem_prekey is not None:
        _check_kem_prekey(identity_key, last_resort_kem_prekey, last_resort=True)
    moment = now or timezone.now()
    with transaction.atomic():
        # Uploads of one device one at a time, so two cannot both pass the checks below.
        Device.objects.select_for_update().filter(pk=device.pk).first()
        _refuse_reused_ids(
            OneTimePrekey, device, [k.key_id for k in one_time_prekeys], "One-time prekey"
        )
        _refuse_reused_ids(
            KemPrekey, device, [k.key_id for k in kem_prekeys], "One-time KEM prekey"
        )
        stored = KemPrekey.objects.filter(device=device).count()
        limit = settings.PARLEY_KEM_PREKEYS_MAX
        if kem_prekeys and stored + len(kem_prekeys) > limit:
            raise Conflict(
                f"A device keeps at most {limit} one-time KEM prekeys on the server; "
                f"{stored} are stored.",
                code="too_many_prekeys",
                data={"field": "kem_prekeys", "stored": stored, "limit": limit},
            )
        if signed_prekey is not None:
            SignedPrekey.objects.update_or_create(
                device=device,
                key_id=signed_prekey.key_id,
                defaults={
                    "public_key": signed_prekey.public_key,
                    "signature": signed_prekey.signature,
                    "created_at": moment,
                },
            )
        OneTimePrekey.objects.bulk_create(
            OneTimePrekey(device=device, key_id=k.key_id, public_key=k.public_key)
            for k in one_time_prekeys
        )
        KemPrekey.objects.bulk_create(
            KemPrekey(
                device=device, key_id=k.key_id, public_key=k.public_key, signature=k.signature
            )
            for k in kem_prekeys
        )
        if last_resort_kem_prekey is not None:
            LastResortKemPrekey.objects.update_or_create(
                device=device,
                defaults={
                    "key_id": last_resort_kem_prekey.key_id,
                    "public_key": last_resort_kem_prekey.public_key,
                    "signature": last_resort_kem_prekey.signature,
                    "created_at": moment,
                },
            )


def _verify(identity_key: bytes, message: bytes, signature: bytes, *, what: str) -> None:
    try:
        ed25519_verify(identity_key, message, signature, what=what)
    except ProtocolError as error:
        raise AppError(str(error), code=error.code) from None


def _check_kem_prekey(identity_key: bytes, kem: KemPrekeyIn, *, last_resort: bool) -> None:
    """An ML-KEM-768 encapsulation key (400 `invalid_key`), signed by the device's identity key
    with this flag (400 `invalid_signature`: a one-time key signed as the last-resort one, or
    the other way round, fails too)."""
    what = f"{'last-resort' if last_resort else 'one-time'} KEM prekey {kem.key_id}"
    field = "last_resort_kem_prekey" if last_resort else "kem_prekeys"
    try:
        mlkem768_check_public(kem.public_key)
    except ProtocolError as error:
        raise AppError(
            f"{what}: {error}", code=error.code, data={"field": field, "id": kem.key_id}
        ) from None
    _verify(
        identity_key,
        kem_prekey_bytes(kem.key_id, last_resort, kem.public_key),
        kem.signature,
        what=f"{what} signature",
    )


def _refuse_reused_ids(
    model: type[OneTimePrekey] | type[KemPrekey], device: Device, ids: list[int], what: str
) -> None:
    existing = set(
        model.objects.filter(device=device, key_id__in=ids).values_list("key_id", flat=True)
    )
    if existing:
        raise Conflict(
            f"{what} ids already uploaded: {sorted(existing)[:5]}.", code="prekey_id_reused"
        )


Pool = TypeVar("Pool", OneTimePrekey, KemPrekey)


def _take_one(model: type[Pool], device: Device) -> Pool | None:
    """Hand out one key of a device's pool (one-time prekeys or one-time KEM prekeys) at most
    once, even under concurrent fetches: the row is claimed by deleting it, and a lost race
    (0 rows deleted) tries the next one."""
    for _ in range(5):
        candidate = model.objects.filter(device=device).order_by("key_id").first()
        if candidate is None:
            return None
        deleted, _ = model.objects.filter(pk=candidate.pk).delete()
        if deleted:
            return candidate
    return None


def _claim(
    model: type[Pool],
    kind: PrekeyClaim.Kind,
    device: Device,
    *,
    requester_id: int,
    moment: datetime,
) -> Pool | None:
    """A key of one pool for the requester account within its fair share of it: at most
    PARLEY_PREKEY_SHARE per PARLEY_PREKEY_SHARE_SECONDS for any account but the device's own,
    each pool counted apart (`kind`); beyond it None."""
    foreign = requester_id != device.user_id
    if foreign:
        since = moment - timedelta(seconds=settings.PARLEY_PREKEY_SHARE_SECONDS)
        claimed = PrekeyClaim.objects.filter(
            device=device, requester_id=requester_id, kind=kind, claimed_at__gt=since
        ).count()
        if claimed >= settings.PARLEY_PREKEY_SHARE:
            return None
    key = _take_one(model, device)
    if key is not None and foreign:
        PrekeyClaim.objects.create(
            device=device, requester_id=requester_id, kind=kind, claimed_at=moment
        )
    return key


def _claim_prekeys(
    device: Device, *, requester_id: int, moment: datetime
) -> tuple[OneTimePrekey | None, PublicKemPrekey | None]:
    """The one-time prekey (or None: the bundle has the signed prekey only) and the KEM prekey
    (a one-time one, else the last-resort one, else None: the device published none) of one
    bundle, each one-time key within the requester's share of its pool. Call inside a
    transaction; the device row is locked so concurrent fetches cannot exceed a share. A
    claim that leaves either pool at PARLEY_PREKEYS_LOW or below is announced to the device
    on commit."""
    Device.objects.select_for_update().filter(pk=device.pk).first()
    otp = _claim(
        OneTimePrekey, PrekeyClaim.Kind.X25519, device, requester_id=requester_id, moment=moment
    )
    one_time_kem = _claim(
        KemPrekey, PrekeyClaim.Kind.KEM, device, requester_id=requester_id, moment=moment
    )
    kem: KemPrekey | LastResortKemPrekey | None = one_time_kem
    if kem is None:
        kem = LastResortKemPrekey.objects.filter(device=device).first()
    if otp is not None or one_time_kem is not None:
        low = prekeys_low(device.pk)
        if low is not None:
            events.send_on_commit(
                events.device_group(device.pk), {"type": events.PREKEYS_LOW, **low}
            )
    public_kem = None
    if kem is not None:
        public_kem = PublicKemPrekey(
            id=kem.key_id,
            public_key=bytes(kem.public_key),
            signature=bytes(kem.signature),
            last_resort=one_time_kem is None,
        )
    return otp, public_kem


def prekey_bundles_take(
    *,
    user: User,
    requester: Device,
    device_ids: list[str] | None = None,
    now: datetime | None = None,
) -> list[PrekeyBundle]:
    """One bundle per active device of `user` (or of those in `device_ids`), each with a fresh
    one-time prekey if any is left and the requester's account is within its fair share, and
    a KEM prekey (a one-time one under the same rule, else the last-resort one) if the device
    published any; never one of the requester itself."""
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
            otp, kem = _claim_prekeys(device, requester_id=requester.user_id, moment=moment)
        bundles.append(
            PrekeyBundle(
                device_id=device.id,
                identity_key=bytes(device.identity_key),
                signed_prekey_id=spk.key_id,
                signed_prekey=bytes(spk.public_key),
                signed_prekey_signature=bytes(spk.signature),
                one_time_prekey_id=None if otp is None else otp.key_id,
                one_time_prekey=None if otp is None else bytes(otp.public_key),
                kem_prekey=kem,
            )
        )
    return bundles


def prekey_claims_expire(*, now: datetime | None = None) -> int:
    """The expiry job: claims older than the fair-share window count for nothing."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.PARLEY_PREKEY_SHARE_SECONDS)
    deleted, _ = PrekeyClaim.objects.filter(claimed_at__lte=cutoff).delete()
    return deleted
