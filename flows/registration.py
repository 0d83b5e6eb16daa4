"""Creating an account with its primary device, and re-creating the primary when the old
phone is lost: accounts (user, passkey, challenges) and devices (device, list, prekeys) in
one transaction."""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction

from accounts import passkeys
from accounts.challenges import (
    challenge_consume,
    challenge_issue,
    now_or_default,
    passkey_assert,
    passkey_not_accepted,
)
from accounts.models import Challenge, Passkey, User
from devices.devicelists import DeviceListRefused, device_list_store
from devices.models import Device
from devices.prekeys import prekeys_store
from devices.schemas import NewPrimary
from devices.selectors import current_device_list
from devices.services import device_create
from flows.removal import account_reset
from web.errors import Conflict


def _install_primary(*, user: User, new: NewPrimary, reset: bool, now: datetime) -> Device:
    """Create the primary device, store its signed list and its prekeys (in the caller's
    transaction). `reset`: the list may carry a new account key (re-registration)."""
    primary = device_create(user=user, new=new.device, is_primary=True, now=now)
    device_list_store(
        user=user, device_list=new.device_list, expected_ids={primary.id}, reset=reset, now=now
    )
    prekeys_store(
        device=primary,
        signed_prekey=new.signed_prekey,
        one_time_prekeys=new.one_time_prekeys,
        last_resort_kem_prekey=new.last_resort_kem_prekey,
        kem_prekeys=new.kem_prekeys,
        now=now,
    )
    return primary


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
        raise DeviceListRefused(
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


def account_reregister_verify(
    *, challenge_token: str, credential: dict, now: datetime | None = None
) -> tuple[Challenge, User, int]:
    """Re-registration, step one: the passkey (a discoverable credential, answering a challenge
    from `accounts.services.primary_sign_in_begin`) names its account. Only then does the
    caller learn the account and its current list version, with a single-use grant for step
    two."""
    moment = now_or_default(now)
    challenge = challenge_consume(
        token=challenge_token, purpose=Challenge.Purpose.SIGN_IN, now=moment
    )
    passkey = passkey_assert(user=None, challenge=challenge, credential=credential, now=moment)
    current = current_device_list(passkey.user)
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
        raise DeviceListRefused(
            "The new list must be signed by this browser's identity key.",
            code="device_list_mismatch",
        )
    user = grant.user
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=user.pk).first()
        account_reset(user=user, now=moment)
        primary = _install_primary(user=user, new=new, reset=True, now=moment)
    return primary
