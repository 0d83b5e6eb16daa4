"""Linking a new device: the link session from the new browser's request to its first
sign-in (DESIGN §4, docs/protocol.md section 19). Every change of state is a move of the
table in `devices.linkstates`; the cap on companions is checked at each step that could
add one."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.challenges import ChallengeRefused, challenge_consume, challenge_issue, passkey_assert
from accounts.models import Challenge, User
from devices import events
from devices.devicelists import DeviceListRefused, device_list_store
from devices.linkstates import (
    TRANSITIONS,
    UNFINISHED,
    LinkRefused,
    link_move,
    move_check,
    sources_of,
)
from devices.models import Device, LinkSession, link_secret_hash
from devices.prekeys import prekeys_store
from devices.schemas import KemPrekeyIn, NewDevice, OneTimePrekeyIn, SignedPrekeyIn
from devices.selectors import account_full, active_device_ids, current_device_list
from devices.services import device_create, device_touch
from protocol import devicelist as dl
from protocol import linking
from protocol.encoding import b64u_decode, b64u_encode
from protocol.exceptions import ProtocolError
from protocol.keys import kem_prekey_bytes, signed_prekey_bytes
from protocol.primitives import ed25519_verify, mlkem768_check_public
from web.errors import Conflict, Forbidden, NotFound

State = LinkSession.State


class CompanionLimit(LinkRefused):
    """The account already has PARLEY_MAX_COMPANIONS companions; the link request is closed."""

    code = "companion_limit"


@dataclass(frozen=True)
class StagedPrekeys:
    """The new device's prekeys, checked when it signs and kept on the link session
    (`LinkSession.prekeys`) until the device exists: written and read only here."""

    signed_prekey: SignedPrekeyIn
    one_time_prekeys: list[OneTimePrekeyIn]
    last_resort_kem_prekey: KemPrekeyIn | None = None  # version 2 (27.6)
    kem_prekeys: tuple[KemPrekeyIn, ...] = ()

    def to_json(self) -> dict[str, Any]:
        spk = self.signed_prekey
        kem = self.last_resort_kem_prekey
        return {
            "kem_prekeys": [_kem_json(k) for k in self.kem_prekeys],
            "last_resort_kem_prekey": None if kem is None else _kem_json(kem),
            "signed_prekey": {
                "id": spk.key_id,
                "public_key": b64u_encode(spk.public_key),
                "signature": b64u_encode(spk.signature),
            },
            "one_time_prekeys": [
                {"id": k.key_id, "public_key": b64u_encode(k.public_key)}
                for k in self.one_time_prekeys
            ],
        }

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> StagedPrekeys:
        spk = stored["signed_prekey"]
        kem = stored.get("last_resort_kem_prekey")  # absent from links staged before it
        return cls(
            last_resort_kem_prekey=None if kem is None else _kem_in(kem),
            kem_prekeys=tuple(_kem_in(k) for k in stored.get("kem_prekeys", [])),
            signed_prekey=SignedPrekeyIn(
                key_id=spk["id"],
                public_key=b64u_decode(spk["public_key"]),
                signature=b64u_decode(spk["signature"]),
            ),
            one_time_prekeys=[
                OneTimePrekeyIn(key_id=k["id"], public_key=b64u_decode(k["public_key"]))
                for k in stored["one_time_prekeys"]
            ],
        )


def _kem_json(key: KemPrekeyIn) -> dict[str, Any]:
    return {
        "id": key.key_id,
        "public_key": b64u_encode(key.public_key),
        "signature": b64u_encode(key.signature),
    }


def _kem_in(stored: dict[str, Any]) -> KemPrekeyIn:
    return KemPrekeyIn(
        key_id=stored["id"],
        public_key=b64u_decode(stored["public_key"]),
        signature=b64u_decode(stored["signature"]),
    )


def _link_for_update(link_id: str, *, now: datetime) -> LinkSession:
    """The link session, locked, if it is still open: not finished and not expired."""
    link = LinkSession.objects.select_for_update().filter(pk=link_id).first()
    if link is None:
        raise NotFound(
            "This link request does not exist. Show a new QR code on the new device.",
            code="link_not_found",
        )
    if link.state == State.ACCOUNT_FULL:
        raise LinkRefused(
            "This link request was closed because your account was full."
            " Show a new QR code on the new device.",
            code="link_used",
            status=410,
        )
    if not TRANSITIONS[link.state]:
        raise LinkRefused(
            "This link request was already used. Show a new QR code on the new device.",
            code="link_used",
            status=410,
        )
    if link.expires_at <= now and link.state in UNFINISHED:
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
    moment = now or timezone.now()
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
        browser_secret_hash=link_secret_hash(secret),
        device_id=new.device_id,
        identity_key=new.identity_key,
        ephemeral_key=ephemeral_key,
        name=new.name,
        platform=new.platform,
        created_at=moment,
        expires_at=moment + timedelta(seconds=settings.PARLEY_LINK_TTL_SECONDS),
    )
    return link, secret


def link_session_for_primary(
    *, link_id: str, device: Device, now: datetime | None = None
) -> LinkSession:
    if not device.is_primary:
        raise Forbidden(
            "Only your primary device can approve a new device. Open this page on your phone.",
            code="not_primary",
        )
    with transaction.atomic():
        link = _link_for_update(link_id, now=now or timezone.now())
        if link.user_id is not None and link.user_id != device.user_id:
            # Approved by another account: the same answer as for a link that does not exist.
            raise NotFound("This link request does not exist.", code="link_not_found")
        return link


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
        _link_finish(link, state=State.ACCOUNT_FULL)


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
    move_check(link.state, State.APPROVED)
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
    moment = now or timezone.now()
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
            move_check(link.state, State.APPROVED)
            _check_companion_cap(device.user)
            passkey_assert(user=device.user, challenge=challenge, credential=credential, now=moment)
            link_move(link, State.APPROVED)
            link.user = device.user
            link.approving_device = device
            link.provisioning = provisioning
            link.name = name
            link.send_history = send_history
            # The new device has one more TTL to answer, so a slow approval does not fail.
            link.expires_at = moment + timedelta(seconds=settings.PARLEY_LINK_TTL_SECONDS)
            link.save()
            events.send_on_commit(
                events.link_group(link.id), {"type": events.LINK_CHANGED, "state": link.state}
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
    last_resort_kem_prekey: KemPrekeyIn | None = None,
    kem_prekeys: Sequence[KemPrekeyIn] = (),
    now: datetime | None = None,
) -> LinkSession:
    """The new device answers with its signature over (account id ‖ account key ‖ own key
    [‖ its versions]), its prekeys and, version 2, its last-resort KEM prekey (27.5, 27.6)."""
    moment = now or timezone.now()
    with transaction.atomic():
        link = _link_for_update(link.pk, now=moment)
        move_check(link.state, State.SIGNED)
        current = current_device_list(link.user)
        try:
            dl.device_signature_protocols(  # either form (docs/protocol.md 27.5)
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
            kem = [(k, False) for k in kem_prekeys]
            if last_resort_kem_prekey is not None:
                kem.append((last_resort_kem_prekey, True))
            for key, last in kem:  # checked now: the device does not exist yet (27.6)
                mlkem768_check_public(key.public_key)
                ed25519_verify(
                    bytes(link.identity_key),
                    kem_prekey_bytes(key.key_id, last, key.public_key),
                    key.signature,
                    what=f"KEM prekey {key.key_id} signature",
                )
        except ProtocolError as error:
            raise LinkRefused(str(error), code=error.code) from None
        link_move(link, State.SIGNED)
        link.device_signature = device_signature
        link.prekeys = StagedPrekeys(
            signed_prekey=signed_prekey,
            one_time_prekeys=one_time_prekeys,
            last_resort_kem_prekey=last_resort_kem_prekey,
            kem_prekeys=tuple(kem_prekeys),
        ).to_json()
        link.save()
        events.send_on_commit(
            events.device_group(link.approving_device_id),
            {"type": events.LINK_SIGNED, "link_id": link.id},
        )
    return link


def link_complete(
    *, link_id: str, device: Device, device_list: dl.DeviceList, now: datetime | None = None
) -> Device:
    """The primary publishes list v+1 with the new device: assertion, signatures and the
    companion cap are checked here in one transaction, then the device is created."""
    moment = now or timezone.now()
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
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=device.user_id).first()
        link = link_session_for_primary(link_id=link_id, device=device, now=moment)
        move_check(link.state, State.LINKED)
        if link.approving_device_id != device.pk:
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
        prekeys = StagedPrekeys.from_json(link.prekeys)
        prekeys_store(
            device=new_device,
            signed_prekey=prekeys.signed_prekey,
            one_time_prekeys=prekeys.one_time_prekeys,
            last_resort_kem_prekey=prekeys.last_resort_kem_prekey,
            kem_prekeys=prekeys.kem_prekeys,
            now=moment,
        )
        link_move(link, State.LINKED)
        link.linked_device = new_device
        link.token_nonce = secrets.token_bytes(32)
        link.save()
        events.send_on_commit(
            events.link_group(link.id), {"type": events.LINK_CHANGED, "state": link.state}
        )
        events.send_on_commit(
            events.user_group(device.user_id),
            {
                "type": events.DEVICES_CHANGED,
                "reason": "linked",
                "device_id": new_device.id,
                "device_name": new_device.name,
            },
        )
    return new_device


def link_redeem(*, link: LinkSession, signature: bytes, now: datetime | None = None) -> Device:
    """The new browser proves it holds the new identity key; it gets its own session once."""
    moment = now or timezone.now()
    with transaction.atomic():
        link = LinkSession.objects.select_for_update().get(pk=link.pk)
        move_check(link.state, State.REDEEMED)
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
        link_move(link, State.REDEEMED)
        link.save(update_fields=["state"])
        device_touch(device, now=moment)
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
            _link_finish(link, state=State.ACCOUNT_FULL)
        else:
            raise LinkRefused(
                "Your account has room for this device: approve or decline it.",
                code="link_state",
            )


def link_cancel(*, link: LinkSession) -> None:
    _link_finish(link, state=State.CANCELLED)


def _link_finish(link: LinkSession, *, state: str) -> None:
    """End an unfinished link request in `state` (cancelled, account_full) and say so. A
    conditional update rather than `link_move`: the row is not locked here, and a request
    that already finished stays as it is."""
    with transaction.atomic():
        updated = LinkSession.objects.filter(pk=link.pk, state__in=sources_of(state)).update(
            state=state
        )
        if updated:
            events.send_on_commit(
                events.link_group(link.pk), {"type": events.LINK_CHANGED, "state": state}
            )
            if link.approving_device_id:
                events.send_on_commit(
                    events.device_group(link.approving_device_id),
                    {"type": events.LINK_SIGNED, "link_id": link.pk},
                )


def link_sessions_expire(*, now: datetime | None = None) -> int:
    """The expiry job: link sessions past their expiry are deleted, except linked ones (their
    device exists; the new browser may still redeem its token)."""
    deleted, _ = (
        LinkSession.objects.filter(expires_at__lte=now or timezone.now())
        .exclude(state=State.LINKED)
        .delete()
    )
    return deleted
