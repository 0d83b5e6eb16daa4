"""The device record and its sessions: creation, use, sign-in and sign-out.

The other device changes live by area: `prekeys`, `devicelists`, `revocation`, `linking`;
flows that reach into other apps (removing a device, creating an account) in `flows/`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.challenges import (
    ChallengeRefused,
    challenge_consume,
    challenge_issue,
    passkey_assert,
)
from accounts.models import Challenge, User
from devices import events
from devices.models import Device, DeviceSession
from devices.schemas import MAX_DEVICE_NAME, NewDevice
from protocol import linking
from protocol.exceptions import ProtocolError
from web.errors import Conflict, Forbidden, NotFound


def device_create(
    *, user: User, new: NewDevice, is_primary: bool, now: datetime | None = None
) -> Device:
    moment = now or timezone.now()
    if Device.objects.filter(pk=new.device_id).exists():
        raise Conflict("That device id is taken; generate a new one.", code="device_id_taken")
    if Device.objects.filter(identity_key=new.identity_key).exists():
        raise Conflict("That identity key is already registered.", code="identity_key_taken")
    return Device.objects.create(
        id=new.device_id,
        user=user,
        identity_key=new.identity_key,
        is_primary=is_primary,
        name=distinct_device_name(user=user, name=new.name),
        platform=new.platform,
        added_at=moment,
        last_seen_on=seen_day(moment),
    )


def distinct_device_name(*, user: User, name: str) -> str:
    """`name`, or "`name` 2", "`name` 3"... when another active device of the account is
    called so (ignoring case): every browser proposes "Chromium on Linux", and a person must
    tell their devices apart on the devices page and in "Your device … was logged out"."""
    taken = {
        n.casefold()
        for n in Device.objects.filter(user=user, revoked_at__isnull=True).values_list(
            "name", flat=True
        )
    }
    candidate, number = name, 1
    while candidate.casefold() in taken:
        number += 1
        suffix = f" {number}"
        candidate = name[: MAX_DEVICE_NAME - len(suffix)].rstrip() + suffix
    return candidate


def device_rename(*, actor: Device, device_id: str, name: str) -> Device:
    """Any active device of the account renames any active device of it (its own too); the
    account's other devices are told. Names stay distinct within the account."""
    with transaction.atomic():
        target = (
            Device.objects.select_for_update()
            .filter(pk=device_id, user=actor.user, revoked_at__isnull=True)
            .first()
        )
        if target is None:
            raise NotFound("No such device.", code="device_not_found")
        if target.name == name:
            return target
        others = Device.objects.filter(user=actor.user, revoked_at__isnull=True).exclude(
            pk=target.pk
        )
        if name.casefold() in {n.casefold() for n in others.values_list("name", flat=True)}:
            raise Conflict(
                f"Another of your devices is already called “{name}”. Choose another name.",
                code="device_name_taken",
                data={"field": "name"},
            )
        target.name = name
        target.save(update_fields=["name"])
        events.send_on_commit(
            events.user_group(actor.user_id),
            {
                "type": events.DEVICES_CHANGED,
                "reason": "renamed",
                "device_id": target.id,
                "device_name": target.name,
            },
        )
    return target


def account_rename(*, actor: Device, display_name: str) -> User:
    """Any active device of the account sets the account's display name (public, like the
    username: docs/protocol.md section 19); the account's devices are told."""
    user = actor.user
    with transaction.atomic():
        if user.display_name != display_name:
            User.objects.filter(pk=user.pk).update(display_name=display_name)
            user.display_name = display_name
            events.send_on_commit(
                events.user_group(user.pk),
                {"type": events.ACCOUNT_RENAMED, "display_name": display_name},
            )
    return user


def seen_day(moment: datetime) -> date:
    """The UTC day of `moment`: all the server keeps of when a device was used."""
    return moment.astimezone(UTC).date()


def device_touch(device: Device, *, now: datetime | None = None) -> None:
    """Record that the device was seen today (one write a day at most)."""
    day = seen_day(now or timezone.now())
    if device.last_seen_on != day:
        Device.objects.filter(pk=device.pk).update(last_seen_on=day)
        device.last_seen_on = day


def device_bind_session(*, device: Device, session_key: str) -> None:
    DeviceSession.objects.update_or_create(session_key=session_key, defaults={"device": device})


def device_sign_out(*, device: Device, session_key: str) -> None:
    """Forget one session of the device (the device itself stays linked)."""
    DeviceSession.objects.filter(device=device, session_key=session_key).delete()


def primary_sign_in(
    *,
    challenge_token: str,
    credential: dict,
    device_id: str,
    device_signature: bytes,
    now: datetime | None = None,
) -> Device:
    """Sign in on the primary: the passkey proves the person, a signature by the device's
    identity key over the same challenge proves this browser still holds the device's keys.
    The challenge comes from `accounts.services.primary_sign_in_begin`."""
    challenge = challenge_consume(token=challenge_token, purpose=Challenge.Purpose.SIGN_IN, now=now)
    passkey = passkey_assert(user=None, challenge=challenge, credential=credential, now=now)
    device = Device.objects.filter(pk=device_id, user=passkey.user, revoked_at__isnull=True).first()
    if device is None or not device.is_primary:
        raise Forbidden("This browser is not the account's primary device.", code="not_primary")
    _verify_device_key(device, bytes(challenge.challenge), device_signature)
    return device


def _verify_device_key(device: Device, nonce: bytes, signature: bytes) -> None:
    try:
        linking.verify_sign_in(
            signature,
            identity_key=bytes(device.identity_key),
            origin=settings.PARLEY_ORIGIN,
            device_id=device.id,
            nonce=nonce,
        )
    except ProtocolError as error:
        raise Forbidden(f"Device key check failed: {error}", code=error.code) from None


def device_sign_in_begin(*, device_id: str, now: datetime | None = None) -> Challenge:
    return challenge_issue(
        purpose=Challenge.Purpose.DEVICE_SIGN_IN, data={"device_id": device_id}, now=now
    )


def device_sign_in(
    *, challenge_token: str, device_id: str, signature: bytes, now: datetime | None = None
) -> Device:
    """A device whose session expired signs back in with its identity key (no stored tokens)."""
    challenge = challenge_consume(
        token=challenge_token, purpose=Challenge.Purpose.DEVICE_SIGN_IN, now=now
    )
    if challenge.data.get("device_id") != device_id:
        raise ChallengeRefused(
            "This challenge was issued for another device.", code="challenge_mismatch"
        )
    device = Device.objects.filter(pk=device_id).first()
    if device is None:
        raise Forbidden("This device is not registered.", code="device_unknown")
    if device.revoked_at is not None:
        raise Forbidden("This device was logged out.", code="device_revoked")
    _verify_device_key(device, bytes(challenge.challenge), signature)
    return device
