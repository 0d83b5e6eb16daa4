"""Account state changes: sign-up with a passkey, sign-in, single-use challenges."""

from __future__ import annotations

import secrets
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction

from accounts import passkeys
from accounts.challenges import (
    ChallengeRefused,
    challenge_consume,
    challenge_issue,
    now_or_default,
    passkey_assert,
    passkey_not_accepted,
)
from accounts.models import Challenge, Passkey, User
from config.errors import Conflict, Forbidden
from devices import services as device_services
from devices.models import Device
from devices.schemas import NewPrimary
from protocol import linking
from protocol.exceptions import ProtocolError


def _install_primary(*, user: User, new: NewPrimary, reset: bool, now: datetime) -> Device:
    """Create the primary device, store its signed list and its prekeys (in the caller's
    transaction). `reset`: the list may carry a new account key (re-registration)."""
    primary = device_services.device_create(user=user, new=new.device, is_primary=True, now=now)
    device_services.device_list_store(
        user=user, device_list=new.device_list, expected_ids={primary.id}, reset=reset, now=now
    )
    device_services.prekeys_store(
        device=primary,
        signed_prekey=new.signed_prekey,
        one_time_prekeys=new.one_time_prekeys,
        now=now,
    )
    return primary


def account_register_begin(
    *, username: str, display_name: str, now: datetime | None = None
) -> tuple[Challenge, dict]:
    if User.objects.filter(username=username).exists():
        raise Conflict(
            f"The username {username!r} is taken; choose another.", code="username_taken"
        )
    user_handle = secrets.token_bytes(32)
    challenge = challenge_issue(
        purpose=Challenge.Purpose.REGISTER,
        data={"username": username, "display_name": display_name, "user_handle": user_handle.hex()},
        now=now,
    )
    options = passkeys.registration_options(
        challenge=bytes(challenge.challenge),
        user_handle=user_handle,
        username=username,
        display_name=display_name,
    )
    return challenge, options


def account_register(
    *,
    challenge_token: str,
    credential: dict,
    new: NewPrimary,
    now: datetime | None = None,
) -> Device:
    """Create the account, its passkey and its primary device with signed device list v1."""
    moment = now_or_default(now)
    challenge = challenge_consume(
        token=challenge_token, purpose=Challenge.Purpose.REGISTER, now=moment
    )
    registered = passkeys.verify_registration(
        credential=credential, challenge=bytes(challenge.challenge)
    )
    if new.device_list.account_key != new.device.identity_key or new.device_list.version != 1:
        raise device_services.DeviceListRefused(
            "The first device list must be version 1, signed by this device's identity key.",
            code="device_list_mismatch",
        )
    try:
        with transaction.atomic():
            user = User.objects.create_user(
                username=challenge.data["username"], display_name=challenge.data["display_name"]
            )
            Passkey.objects.create(
                user=user,
                credential_id=registered.credential_id,
                public_key=registered.public_key,
                sign_count=registered.sign_count,
                last_used_at=moment,
            )
            primary = _install_primary(user=user, new=new, reset=False, now=moment)
    except IntegrityError:
        raise Conflict(
            f"The username {challenge.data['username']!r} is taken; choose another.",
            code="username_taken",
        ) from None
    return primary


def primary_sign_in_begin(*, now: datetime | None = None) -> tuple[Challenge, dict]:
    """An anonymous passkey challenge with empty `allowCredentials` (sign-in on the primary and
    re-registration): the same answer for everyone, so it tells nothing about any account."""
    challenge = challenge_issue(purpose=Challenge.Purpose.SIGN_IN, now=now)
    return challenge, passkeys.authentication_options(challenge=bytes(challenge.challenge))


def primary_sign_in(
    *,
    challenge_token: str,
    credential: dict,
    device_id: str,
    device_signature: bytes,
    now: datetime | None = None,
) -> Device:
    """Sign in on the primary: the passkey proves the person, a signature by the device's
    identity key over the same challenge proves this browser still holds the device's keys."""
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


def account_reregister_verify(
    *, challenge_token: str, credential: dict, now: datetime | None = None
) -> tuple[Challenge, User, int]:
    """Re-registration, step one: the passkey (a discoverable credential, answering a challenge
    from `primary_sign_in_begin`) names its account. Only then does the caller learn the
    account and its current list version, with a single-use grant for step two."""
    moment = now_or_default(now)
    challenge = challenge_consume(
        token=challenge_token, purpose=Challenge.Purpose.SIGN_IN, now=moment
    )
    passkey = passkey_assert(user=None, challenge=challenge, credential=credential, now=moment)
    current = device_services.current_device_list(passkey.user)
    if current is None:
        raise passkey_not_accepted()
    grant = challenge_issue(
        purpose=Challenge.Purpose.REREGISTER,
        user=passkey.user,
        data={"device_list_version": current.version},
        now=moment,
    )
    return grant, passkey.user, current.version


def account_reregister(
    *,
    reregister_token: str,
    new: NewPrimary,
    now: datetime | None = None,
) -> Device:
    """Make this browser the account's new primary (the old phone is lost): the grant from
    `account_reregister_verify` proves the person; the account key becomes this browser's
    identity key, every other device is logged out, and contacts see the account key change
    ("security code changed") in list v+1."""
    moment = now_or_default(now)
    grant = challenge_consume(
        token=reregister_token, purpose=Challenge.Purpose.REREGISTER, now=moment
    )
    if new.device_list.account_key != new.device.identity_key:
        raise device_services.DeviceListRefused(
            "The new list must be signed by this browser's identity key.",
            code="device_list_mismatch",
        )
    user = grant.user
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=user.pk).first()
        device_services.account_reset(user=user, now=moment)
        primary = _install_primary(user=user, new=new, reset=True, now=moment)
    return primary
