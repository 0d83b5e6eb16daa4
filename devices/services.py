"""Every state change of devices, prekeys, device lists and link sessions: one function each.

Views and consumers call these with validated values. Each runs in one transaction and
announces its change on the channel layer only after commit (devices.events).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import transaction
from django.utils import timezone

from accounts.challenges import ChallengeRefused, challenge_consume, challenge_issue, passkey_assert
from accounts.models import Challenge, User
from config.errors import AppError, Conflict, Forbidden, NotFound
from devices import events
from devices.models import (
    Device,
    DeviceList,
    DeviceSession,
    LinkSession,
    OneTimePrekey,
    PrekeyClaim,
    SignedPrekey,
)
from devices.schemas import NewDevice, OneTimePrekeyIn, SignedPrekeyIn
from devices.selectors import veto_until
from protocol import devicelist as dl
from protocol import linking
from protocol.encoding import b64u_encode
from protocol.exceptions import ProtocolError
from protocol.keys import PrekeyBundle, signed_prekey_bytes
from protocol.primitives import ed25519_verify


class DeviceListRefused(AppError):
    code = "device_list_refused"
    status = 409


class LinkRefused(AppError):
    code = "link_refused"
    status = 409


class CompanionLimit(LinkRefused):
    """The account already has PARLEY_MAX_COMPANIONS companions; the link request is closed."""

    code = "companion_limit"


def _now(now: datetime | None) -> datetime:
    return now or timezone.now()


def _protocol_refusal(error: ProtocolError, what: str) -> AppError:
    return DeviceListRefused(f"{what}: {error}", code=error.code)


# ---------------------------------------------------------------- prekeys


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
                "created_at": _now(now),
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
    remaining = OneTimePrekey.objects.filter(device=device).count()
    if remaining <= settings.PARLEY_PREKEYS_LOW:
        events.send_on_commit(
            events.device_group(device.pk), {"type": "prekeys.low", "remaining": remaining}
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
    moment = _now(now)
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
    cutoff = _now(now) - timedelta(seconds=settings.PARLEY_PREKEY_SHARE_SECONDS)
    deleted, _ = PrekeyClaim.objects.filter(claimed_at__lte=cutoff).delete()
    return deleted


# ---------------------------------------------------------------- devices and lists


def device_create(
    *, user: User, new: NewDevice, is_primary: bool, now: datetime | None = None
) -> Device:
    moment = _now(now)
    if Device.objects.filter(pk=new.device_id).exists():
        raise Conflict("That device id is taken; generate a new one.", code="device_id_taken")
    if Device.objects.filter(identity_key=new.identity_key).exists():
        raise Conflict("That identity key is already registered.", code="identity_key_taken")
    return Device.objects.create(
        id=new.device_id,
        user=user,
        identity_key=new.identity_key,
        is_primary=is_primary,
        name=new.name,
        platform=new.platform,
        added_at=moment,
        last_used_at=moment,
    )


def current_device_list(user: User) -> DeviceList | None:
    return DeviceList.objects.filter(user=user).order_by("-version").first()


def _known_devices(user: User) -> dict[str, bytes]:
    return {d.id: bytes(d.identity_key) for d in Device.objects.filter(user=user)}


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
            known_devices=_known_devices(user),
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
    body = device_list.to_dict()
    return DeviceList.objects.create(
        user=user,
        version=device_list.version,
        account_key=device_list.account_key,
        body=body,
        list_hash=dl.device_list_hash(device_list),
        created_at=_now(now),
    )


def active_device_ids(user: User) -> set[str]:
    return set(
        Device.objects.filter(user=user, revoked_at__isnull=True).values_list("id", flat=True)
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
            {"type": "devices.changed", "reason": "list_published", "device_id": device.id},
        )
    return stored


def device_touch(
    device: Device, *, now: datetime | None = None, every: timedelta = timedelta(minutes=1)
) -> None:
    """Record use, at most once a minute (a write per request would be waste)."""
    moment = _now(now)
    if moment - device.last_used_at >= every:
        Device.objects.filter(pk=device.pk).update(last_used_at=moment)
        device.last_used_at = moment


def device_bind_session(*, device: Device, session_key: str) -> None:
    DeviceSession.objects.update_or_create(session_key=session_key, defaults={"device": device})


def device_sign_out(*, device: Device, session_key: str) -> None:
    """Forget one session of the device (the device itself stays linked)."""
    DeviceSession.objects.filter(device=device, session_key=session_key).delete()


def _cut_off(device: Device, *, reason: str, moment: datetime) -> None:
    """Revocation effects: sessions, prekeys and queue gone; sockets closed after commit."""
    Device.objects.filter(pk=device.pk).update(revoked_at=moment, revoked_reason=reason)
    device.revoked_at, device.revoked_reason = moment, reason
    keys = list(DeviceSession.objects.filter(device=device).values_list("session_key", flat=True))
    Session.objects.filter(session_key__in=keys).delete()
    DeviceSession.objects.filter(device=device).delete()
    OneTimePrekey.objects.filter(device=device).delete()
    SignedPrekey.objects.filter(device=device).delete()
    from messaging.services import queue_drop_for_device  # messaging owns the queue

    queue_drop_for_device(device=device)
    events.send_on_commit(
        events.device_group(device.id), {"type": "device.revoked", "reason": reason}
    )
    events.send_on_commit(
        events.user_group(device.user_id),
        {
            "type": "devices.changed",
            "reason": "revoked",
            "device_id": device.id,
            "device_name": device.name,
        },
    )


def account_reset(*, user: User, now: datetime | None = None) -> None:
    """Log out every device of the account (the primary left, or a new primary took over).
    Runs inside the caller's transaction."""
    for device in Device.objects.filter(user=user, revoked_at__isnull=True):
        _cut_off(device, reason="account_reset", moment=_now(now))


def device_revoke(
    *, actor: Device, target: Device, device_list: dl.DeviceList | None, now: datetime | None = None
) -> None:
    """Log a device out.

    - The primary removing a companion signs a list without it (`device_list`), stored here.
    - A device logging itself out is a server-side suspension until the primary re-signs.
    - In the veto window (`selectors.veto_until`) an older companion may remove a new one:
      also a server-side suspension until the primary re-signs.
    - The primary logging itself out resets the account: every device is logged out.
    """
    moment = _now(now)
    if target.user_id != actor.user_id:
        raise NotFound("No such device.", code="device_not_found")
    if target.revoked_at is not None:
        raise Conflict("That device is already logged out.", code="already_logged_out")
    vetoed = (
        actor.pk != target.pk
        and not actor.is_primary
        and veto_until(device=target, by=actor, now=moment) is not None
    )
    if actor.pk != target.pk and not actor.is_primary and not vetoed:
        raise Forbidden("Only the primary can log out this device.", code="not_primary")
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=actor.user_id).first()
        if target.is_primary:
            account_reset(user=actor.user, now=moment)
            return
        if vetoed:
            _cut_off(target, reason="removed_by_device", moment=moment)
        elif actor.pk != target.pk:
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
            _cut_off(target, reason="removed_by_primary", moment=moment)
        else:
            _cut_off(target, reason="logged_out", moment=moment)


# ---------------------------------------------------------------- linking


def _secret_hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def _link_for_update(link_id: str, *, now: datetime) -> LinkSession:
    link = LinkSession.objects.select_for_update().filter(pk=link_id).first()
    if link is None:
        raise NotFound(
            "This link request does not exist. Show a new QR code on the new device.",
            code="link_not_found",
        )
    if link.state == LinkSession.State.ACCOUNT_FULL:
        raise LinkRefused(
            "This link request was closed because your account was full."
            " Show a new QR code on the new device.",
            code="link_used",
            status=410,
        )
    if link.state in (LinkSession.State.REDEEMED, LinkSession.State.CANCELLED):
        raise LinkRefused(
            "This link request was already used. Show a new QR code on the new device.",
            code="link_used",
            status=410,
        )
    if link.expires_at <= now and link.state != LinkSession.State.LINKED:
        raise LinkRefused(
            "This link request expired. Show a new QR code on the new device.",
            code="link_expired",
            status=410,
        )
    return link


def link_session_open(
    *, new: NewDevice, ephemeral_key: bytes, now: datetime | None = None
) -> tuple[LinkSession, str]:
    """A new browser asks to be linked. Returns the session and the browser secret to set as
    an HttpOnly cookie (only its hash is stored)."""
    moment = _now(now)
    if (
        Device.objects.filter(identity_key=new.identity_key).exists()
        or Device.objects.filter(pk=new.device_id).exists()
    ):
        raise Conflict(
            "This device's keys are already registered; reload the page to make new ones.",
            code="identity_key_taken",
        )
    secret = secrets.token_urlsafe(32)
    link = LinkSession.objects.create(
        id=secrets.token_urlsafe(16),
        browser_secret_hash=_secret_hash(secret),
        device_id=new.device_id,
        identity_key=new.identity_key,
        ephemeral_key=ephemeral_key,
        name=new.name,
        platform=new.platform,
        created_at=moment,
        expires_at=moment + timedelta(seconds=settings.PARLEY_LINK_TTL_SECONDS),
    )
    return link, secret


def link_session_for_browser(*, link_id: str, browser_secret: str | None) -> LinkSession:
    """The link session, only for the browser that opened it (a photographed QR is not enough)."""
    link = LinkSession.objects.filter(pk=link_id).first()
    if (
        link is None
        or not browser_secret
        or not secrets.compare_digest(bytes(link.browser_secret_hash), _secret_hash(browser_secret))
    ):
        raise NotFound("This link request does not exist in this browser.", code="link_not_found")
    return link


def link_session_for_primary(
    *, link_id: str, device: Device, now: datetime | None = None
) -> LinkSession:
    if not device.is_primary:
        raise Forbidden(
            "Only your primary device can approve a new device. Open this page on your phone.",
            code="not_primary",
        )
    with transaction.atomic():
        link = _link_for_update(link_id, now=_now(now))
        if link.user_id is not None and link.user_id != device.user_id:
            # Approved by another account: the same answer as for a link that does not exist.
            raise NotFound("This link request does not exist.", code="link_not_found")
        return link


def _companion_count(user: User) -> int:
    return Device.objects.filter(user=user, revoked_at__isnull=True, is_primary=False).count()


def account_full(user: User) -> bool:
    return _companion_count(user) >= settings.PARLEY_MAX_COMPANIONS


def _check_companion_cap(user: User) -> None:
    if account_full(user):
        raise CompanionLimit(
            f"You can link up to {settings.PARLEY_MAX_COMPANIONS} devices; log one out first.",
            data={"max_companions": settings.PARLEY_MAX_COMPANIONS},
        )


def _link_close_full(link_id: str) -> None:
    """Close an unfinished link request refused for the cap; the new browser is told at once
    (it is not signed in, so only its link session can tell it)."""
    link = LinkSession.objects.filter(pk=link_id).first()
    if link is not None:
        _link_finish(link, state=LinkSession.State.ACCOUNT_FULL)


def _check_waiting(link: LinkSession) -> None:
    if link.state != LinkSession.State.WAITING:
        raise LinkRefused("This link request was already approved.", code="link_used", status=410)


def link_approve_challenge(*, link: LinkSession, server_nonce: bytes) -> bytes:
    """The WebAuthn challenge: H(server nonce ‖ link id ‖ companion identity key ‖ ephemeral key)."""
    return linking.link_challenge(
        server_nonce=server_nonce,
        link_id=link.id,
        companion_identity_key=bytes(link.identity_key),
        ephemeral_key=bytes(link.ephemeral_key),
    )


def link_approve_begin(
    *, link_id: str, device: Device, now: datetime | None = None
) -> tuple[Challenge, bytes, list[bytes]]:
    """Issue the single-use WebAuthn challenge bound to this link and both new keys.
    Returns the challenge, the server nonce (the primary recomputes the challenge from the
    QR's keys and refuses a mismatch) and the account's passkey credential ids."""
    link = link_session_for_primary(link_id=link_id, device=device, now=now)
    _check_waiting(link)
    try:
        _check_companion_cap(device.user)
    except CompanionLimit:
        _link_close_full(link.pk)
        raise
    nonce = secrets.token_bytes(32)
    challenge = challenge_issue(
        purpose=Challenge.Purpose.APPROVE_LINK,
        challenge=link_approve_challenge(link=link, server_nonce=nonce),
        user=device.user,
        data={"link_id": link.id},
        now=now,
    )
    return challenge, nonce, [bytes(p.credential_id) for p in device.user.passkeys.all()]


def link_approve(
    *,
    link_id: str,
    device: Device,
    challenge_token: str,
    credential: dict,
    provisioning: bytes,
    name: str,
    send_history: bool,
    now: datetime | None = None,
) -> LinkSession:
    """The primary approves with a passkey (user verification required) and hands over the
    provisioning payload sealed to the new device's ephemeral key. The link and the cap are
    checked before the assertion, so a refused approval leaves the passkey's record alone."""
    moment = _now(now)
    challenge = challenge_consume(
        token=challenge_token, purpose=Challenge.Purpose.APPROVE_LINK, now=moment
    )
    if challenge.user_id != device.user_id or challenge.data.get("link_id") != link_id:
        raise ChallengeRefused(
            "This approval challenge is for another link request.", code="challenge_mismatch"
        )
    try:
        with transaction.atomic():
            User.objects.select_for_update().filter(pk=device.user_id).first()
            link = link_session_for_primary(link_id=link_id, device=device, now=moment)
            _check_waiting(link)
            _check_companion_cap(device.user)
            passkey_assert(user=device.user, challenge=challenge, credential=credential, now=moment)
            link.state = LinkSession.State.APPROVED
            link.user = device.user
            link.approving_device = device
            link.provisioning = provisioning
            link.name = name
            link.send_history = send_history
            # The new device has one more TTL to answer, so a slow approval does not fail.
            link.expires_at = moment + timedelta(seconds=settings.PARLEY_LINK_TTL_SECONDS)
            link.save()
            events.send_on_commit(
                events.link_group(link.id), {"type": "link.changed", "state": link.state}
            )
    except CompanionLimit:
        _link_close_full(link_id)
        raise
    return link


def link_device_sign(
    *,
    link: LinkSession,
    device_signature: bytes,
    signed_prekey: SignedPrekeyIn,
    one_time_prekeys: list[OneTimePrekeyIn],
    now: datetime | None = None,
) -> LinkSession:
    """The new device answers with its signature over (account id ‖ account key ‖ own key)."""
    moment = _now(now)
    with transaction.atomic():
        link = _link_for_update(link.pk, now=moment)
        if link.state != LinkSession.State.APPROVED:
            raise LinkRefused(
                "This link request is not waiting for the new device's signature.",
                code="link_state",
            )
        current = current_device_list(link.user)
        try:
            dl.verify_device_signature(
                device_signature,
                account_id=link.user.username,
                account_key=bytes(current.account_key),
                identity_key=bytes(link.identity_key),
            )
            ed25519_verify(
                bytes(link.identity_key),
                signed_prekey_bytes(signed_prekey.key_id, signed_prekey.public_key),
                signed_prekey.signature,
                what="signed prekey signature",
            )
        except ProtocolError as error:
            raise LinkRefused(str(error), code=error.code) from None
        link.device_signature = device_signature
        link.prekeys = {
            "signed_prekey": {
                "id": signed_prekey.key_id,
                "public_key": b64u_encode(signed_prekey.public_key),
                "signature": b64u_encode(signed_prekey.signature),
            },
            "one_time_prekeys": [
                {"id": k.key_id, "public_key": b64u_encode(k.public_key)} for k in one_time_prekeys
            ],
        }
        link.state = LinkSession.State.SIGNED
        link.save()
        events.send_on_commit(
            events.device_group(link.approving_device_id),
            {"type": "link.signed", "link_id": link.id},
        )
    return link


def link_complete(
    *, link_id: str, device: Device, device_list: dl.DeviceList, now: datetime | None = None
) -> Device:
    """The primary publishes list v+1 with the new device: assertion, signatures and the
    companion cap are checked here in one transaction, then the device is created."""
    moment = _now(now)
    try:
        return _link_complete(
            link_id=link_id, device=device, device_list=device_list, moment=moment
        )
    except CompanionLimit:
        _link_close_full(link_id)
        raise


def _link_complete(
    *, link_id: str, device: Device, device_list: dl.DeviceList, moment: datetime
) -> Device:
    from devices.schemas import one_time_prekeys as parse_otps
    from devices.schemas import signed_prekey as parse_spk

    with transaction.atomic():
        User.objects.select_for_update().filter(pk=device.user_id).first()
        link = link_session_for_primary(link_id=link_id, device=device, now=moment)
        if link.state != LinkSession.State.SIGNED or link.approving_device_id != device.pk:
            raise LinkRefused("This link request is not ready to complete.", code="link_state")
        _check_companion_cap(device.user)
        entry = device_list.entry(link.device_id)
        if (
            entry is None
            or entry.identity_key != bytes(link.identity_key)
            or entry.device_signature != bytes(link.device_signature)
        ):
            raise DeviceListRefused(
                "The new list does not carry the new device's key and signature.",
                code="device_list_mismatch",
            )
        new_device = device_create(
            user=device.user,
            new=NewDevice(
                device_id=link.device_id,
                identity_key=bytes(link.identity_key),
                name=link.name,
                platform=link.platform,
            ),
            is_primary=False,
            now=moment,
        )
        device_list_store(
            user=device.user,
            device_list=device_list,
            expected_ids=active_device_ids(device.user),
            now=moment,
        )
        prekeys_store(
            device=new_device,
            signed_prekey=parse_spk(link.prekeys),
            one_time_prekeys=parse_otps(link.prekeys),
            now=moment,
        )
        link.linked_device = new_device
        link.state = LinkSession.State.LINKED
        link.token_nonce = secrets.token_bytes(32)
        link.save()
        events.send_on_commit(
            events.link_group(link.id), {"type": "link.changed", "state": link.state}
        )
        events.send_on_commit(
            events.user_group(device.user_id),
            {
                "type": "devices.changed",
                "reason": "linked",
                "device_id": new_device.id,
                "device_name": new_device.name,
            },
        )
    return new_device


def link_redeem(*, link: LinkSession, signature: bytes, now: datetime | None = None) -> Device:
    """The new browser proves it holds the new identity key; it gets its own session once."""
    moment = _now(now)
    with transaction.atomic():
        link = LinkSession.objects.select_for_update().get(pk=link.pk)
        if link.state == LinkSession.State.REDEEMED:
            raise LinkRefused(
                "This link was already used to sign in.", code="link_used", status=410
            )
        if link.state != LinkSession.State.LINKED:
            raise LinkRefused("This device is not linked yet.", code="link_state")
        try:
            linking.verify_link_token(
                signature,
                identity_key=bytes(link.identity_key),
                nonce=bytes(link.token_nonce),
                link_id=link.id,
            )
        except ProtocolError as error:
            raise LinkRefused(str(error), code=error.code) from None
        device = Device.objects.get(pk=link.device_id)
        if device.revoked_at is not None:
            raise LinkRefused("This device was logged out.", code="device_revoked", status=403)
        link.state = LinkSession.State.REDEEMED
        link.save(update_fields=["state"])
        device_touch(device, now=moment, every=timedelta(0))
    return device


def link_decline(
    *, link_id: str, device: Device, account_is_full: bool = False, now: datetime | None = None
) -> None:
    """The primary refuses a link request; the new device is told at once. With
    `account_is_full` (the approval page found the account full) it is told that instead."""
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=device.user_id).first()
        link = link_session_for_primary(link_id=link_id, device=device, now=now)
        if not account_is_full:
            link_cancel(link=link)
        elif account_full(device.user):
            _link_finish(link, state=LinkSession.State.ACCOUNT_FULL)
        else:
            raise LinkRefused(
                "Your account has room for this device: approve or decline it.",
                code="link_state",
            )


def link_cancel(*, link: LinkSession) -> None:
    _link_finish(link, state=LinkSession.State.CANCELLED)


def _link_finish(link: LinkSession, *, state: str) -> None:
    """End an unfinished link request in `state` (cancelled, account_full) and say so."""
    with transaction.atomic():
        updated = LinkSession.objects.filter(
            pk=link.pk,
            state__in=[
                LinkSession.State.WAITING,
                LinkSession.State.APPROVED,
                LinkSession.State.SIGNED,
            ],
        ).update(state=state)
        if updated:
            events.send_on_commit(
                events.link_group(link.pk), {"type": "link.changed", "state": state}
            )
            if link.approving_device_id:
                events.send_on_commit(
                    events.device_group(link.approving_device_id),
                    {"type": "link.signed", "link_id": link.pk},
                )


def expire_stale(*, now: datetime | None = None) -> dict[str, int]:
    """The periodic job (`manage.py expire_devices`): drop expired link sessions and
    challenges, and log out the companions of accounts whose primary has not been used for
    PARLEY_PRIMARY_INACTIVITY_DAYS (a server-side suspension: the primary re-signs later)."""
    from accounts.models import Challenge

    moment = _now(now)
    links, _ = (
        LinkSession.objects.filter(expires_at__lte=moment)
        .exclude(state=LinkSession.State.LINKED)
        .delete()
    )
    challenges, _ = Challenge.objects.filter(expires_at__lte=moment).delete()
    cutoff = moment - timedelta(days=settings.PARLEY_PRIMARY_INACTIVITY_DAYS)
    stale_users = Device.objects.filter(
        is_primary=True, revoked_at__isnull=True, last_used_at__lt=cutoff
    ).values_list("user_id", flat=True)
    logged_out = 0
    with transaction.atomic():
        for companion in Device.objects.filter(
            user_id__in=list(stale_users), is_primary=False, revoked_at__isnull=True
        ):
            _cut_off(companion, reason="primary_inactive", moment=moment)
            logged_out += 1
    return {"link_sessions": links, "challenges": challenges, "companions_logged_out": logged_out}
