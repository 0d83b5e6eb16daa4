"""Sending (docs/protocol.md sections 9 and 20): a content as one `send` frame with a
ciphertext for every device of the recipient's verified list and a sent transcript for every
other own device, and the retry after `mismatched_devices`. Every prekey bundle is checked
against the key in the signed list."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from client import api
from client.device import Device
from client.outgoing import OutgoingMessage
from client.store import AcceptedList, CachedSend
from protocol import engine
from protocol.attachments import AttachmentPointer
from protocol.content import Content, ContentType, encode_content, new_content
from protocol.devicelist import DeviceEntry, DeviceList
from protocol.encoding import b64u_decode, b64u_encode
from protocol.engine import (
    MAX_MISMATCH_RETRIES,
    FrameReceived,
    Notice,
    PendingSend,
    SendPlan,
    SendWanted,
)
from protocol.exceptions import MalformedMessage, UntrustedIdentity
from protocol.fanout import encrypt_for_devices
from protocol.keys import PrekeyBundle, PublicKemPrekey
from protocol.ratchet import Session, outdated_for


class SendRefused(Exception):
    """This client will not send (or the server kept refusing); `message` says why."""

    def __init__(self, message: str, *, code: str, cause: BaseException | None = None):
        super().__init__(message)
        self.code = code
        self.cause = cause


class Sender(Device):
    def prepare_send(self, recipient: str, text: str) -> OutgoingMessage:
        """The `send` frame for a text: one ciphertext per device of the recipient, and a
        sent transcript for every other device of this account (section 9)."""
        return self._prepare_new(recipient, ContentType.TEXT, {"text": text})

    def prepare_file(self, recipient: str, pointer: AttachmentPointer) -> OutgoingMessage:
        """The `send` frame of a file uploaded before (docs/protocol.md 26): its pointer as a
        type-12 content, and the blob granted to every target device (19.5)."""
        return self._prepare_new(recipient, ContentType.ATTACHMENT, pointer.to_body())

    def prepare_receipt(
        self, recipient: str, message_ids: list[bytes], *, kind: str = "delivered"
    ) -> OutgoingMessage:
        body = {"kind": kind, "message_ids": [b64u_encode(m) for m in message_ids]}
        return self._prepare_new(recipient, ContentType.RECEIPT, body)

    def prepare_own(
        self, content_type: ContentType, body: dict[str, Any]
    ) -> OutgoingMessage | None:
        """The `send` frame of a content for this account's other devices only (the account
        sync key, type 7); None when the verified own list holds no other device."""
        wanted = SendWanted(secrets.token_urlsafe(16), self.account_id, self.clock())
        plan = self._plan(wanted, self.account_id, {})
        if not plan.devices:
            return None
        return self._prepare(
            plan,
            content_type=content_type,
            body=body,
            message_id=self.rng(16),
            timestamp=self.clock(),
        )

    def retry(self, outgoing: OutgoingMessage, data: Mapping[str, Any]) -> OutgoingMessage:
        """After `mismatched_devices`: the engine refetches and verifies both lists and plans
        again (the same content and envelope id), or refuses past MAX_MISMATCH_RETRIES."""
        frame = {
            "type": "error",
            "code": "mismatched_devices",
            "ref": outgoing.envelope_id,
            "data": dict(data),
        }
        sends = {outgoing.envelope_id: PendingSend(outgoing.recipient, outgoing.attempt)}
        plan = self._plan(FrameReceived(frame, self.clock()), outgoing.recipient, sends)
        return self._prepare(
            plan,
            content_type=outgoing.content_type,
            body=outgoing.body,
            message_id=outgoing.message_id,
            timestamp=outgoing.timestamp,
        )

    def _prepare_new(
        self, recipient: str, content_type: ContentType, body: dict[str, Any]
    ) -> OutgoingMessage:
        if recipient == self.account_id:
            raise SendRefused(
                "Your own devices get what you send as sent transcripts; pick a contact.",
                code="own_account",
            )
        wanted = SendWanted(secrets.token_urlsafe(16), recipient, self.clock())
        return self._prepare(
            self._plan(wanted, recipient, {}),
            content_type=content_type,
            body=body,
            message_id=self.rng(16),
            timestamp=self.clock(),
        )

    def _plan(
        self, event: engine.Event, recipient: str, sends: Mapping[str, PendingSend]
    ) -> SendPlan:
        """The engine's plan of a send (docs/protocol.md section 22.4); a list it could not
        verify raises that list's error, any other refusal SendRefused."""
        effects = self.engine.run(event, recipient, sends=sends)
        self.engine.raise_for(self.account_id, effects)
        self.engine.raise_for(recipient, effects)
        for effect in effects:
            if isinstance(effect, SendPlan):
                return effect
            if isinstance(effect, Notice) and effect.code == "send_refused":
                raise _refusal(effect)
        raise SendRefused(f"No plan to send to {recipient}.", code="not_planned")

    def _prepare(
        self,
        plan: SendPlan,
        *,
        content_type: ContentType,
        body: dict[str, Any],
        message_id: bytes,
        timestamp: int,
    ) -> OutgoingMessage:
        """Encrypt the content for each planned device and a sent transcript for each other
        own device, over sessions checked against the keys in the verified lists."""
        recipient = plan.recipient
        own = self._accepted(self.account_id)
        theirs = self._accepted(recipient)
        recipient_entries = [_entry(theirs.device_list, d) for d in plan.devices]
        own_entries = [_entry(own.device_list, d) for d in plan.transcripts]
        targets = [(recipient, e) for e in recipient_entries] + [
            (self.account_id, e) for e in own_entries
        ]
        bundles = self._bundles_for({a for a, e in targets if self._needs_new_session(e)})
        content = Content(
            type=content_type,
            message_id=message_id,
            timestamp=timestamp,
            sender_list_version=own.version,
            sender_list_hash=own.hash,
            body=body,
        )
        encoded = encode_content(content)
        transcript = (  # none for a content to the own devices alone
            new_content(
                ContentType.SENT_TRANSCRIPT,
                {"recipient": recipient, "content": b64u_encode(encoded)},
                timestamp=timestamp,
                rng=self.rng,
                sender_list_version=own.version,
                sender_list_hash=own.hash,
            )
            if own_entries
            else None
        )
        transcript_bytes = None if transcript is None else encode_content(transcript)
        with self.store.transaction():
            sessions: dict[str, Session] = {}
            accounts: dict[str, str] = {}
            for account, entry in targets:
                sessions[entry.device_id] = self._session_for(account, entry, bundles)
                accounts[entry.device_id] = account
            ciphertexts = encrypt_for_devices(
                encoded, {e.device_id: sessions[e.device_id] for e in recipient_entries}, self.rng
            )
            if transcript_bytes is not None:
                ciphertexts |= encrypt_for_devices(
                    transcript_bytes,
                    {e.device_id: sessions[e.device_id] for e in own_entries},
                    self.rng,
                )
            for device_id, session in sessions.items():
                self.store.save_session(
                    account_id=accounts[device_id], device_id=device_id, session=session
                )
            # kept to send again to a device that could not decrypt it (24.3), with the
            # sessions it advanced
            cached = {e.device_id: b64u_encode(encoded) for e in recipient_entries}
            if transcript_bytes is not None:
                cached |= {e.device_id: b64u_encode(transcript_bytes) for e in own_entries}
            self.store.cache_sent(
                envelope_id=plan.envelope_id,
                recipient=recipient,
                sent_at=self.clock(),
                targets=cached,
            )
        return OutgoingMessage(
            envelope_id=plan.envelope_id,
            recipient=recipient,
            content_type=content_type,
            body=body,
            message_id=message_id,
            timestamp=timestamp,
            recipient_devices=tuple(e.device_id for e in recipient_entries),
            own_devices=tuple(e.device_id for e in own_entries),
            targets=ciphertexts,
            attempt=plan.attempt,
        )

    def prepare_retry_request(
        self, recipient: str, device_id: str, envelope_id: str, count: int
    ) -> OutgoingMessage:
        """The engine's `send_retry_request` (docs/protocol.md 24.1): ask `device_id` to send
        envelope `envelope_id` again, with this device's current signed prekey. It goes in
        the current session only when this device started it and has not received on it
        (it still sends prekey messages) and this is the first ask; otherwise, and always
        from the second ask on, in a new session from the device's claimed bundle, checked
        against its key in the verified list: a state that is behind has a stale sending
        chain too."""
        entry = self._listed(recipient, device_id)
        prekey = self.store.signed_prekeys()[-1]
        body: dict[str, Any] = {
            "envelope_id": envelope_id,
            "count": count,
            "signed_prekey": {
                "id": prekey.id,
                "public_key": b64u_encode(prekey.key.public),
                "signature": b64u_encode(prekey.signature),
            },
        }
        last_resort = self.store.last_resort_kem_prekey(self.device.keys.identity)
        if last_resort is not None:  # so that a new session from the ask is version 2 (27.5)
            body["kem_prekey"] = last_resort.to_public().to_dict()
        session = self.store.session(device_id)
        reuse = (
            count == 1
            and session is not None
            and session.role == "initiator"
            and session.pending_prekey is not None
            and not outdated_for(session, entry.speaks_v2)
        )
        fresh = None
        if not reuse:
            bundles = self._bundles_for({recipient}, device_ids=[device_id])
            fresh = self._session_for(recipient, entry, bundles, fresh=True)
        return self._prepare_one(
            recipient, entry, ContentType.RETRY_REQUEST, body, new_session=fresh
        )

    def prepare_resend(
        self,
        recipient: str,
        device_id: str,
        envelope_id: str,
        content: str | None,
        *,
        new_session: bool,
        signed_prekey: Mapping[str, Any] | None,
        original: CachedSend | None,
        kem_prekey: Mapping[str, Any] | None = None,
    ) -> OutgoingMessage:
        """The engine's `resend` (docs/protocol.md 24.1, 24.3): `{envelope_id, content}` as a
        type-10 content for the one device that asked, in the current session or, when
        `new_session`, in a new one from the request's signed prekey (its signature checked
        under the device's key in the verified list: InvalidSignature). The resend is cached
        as an alias of `original`, so its own loss is asked for with the same counter."""
        entry = self._listed(recipient, device_id)
        session = None
        if new_session:
            if signed_prekey is None:
                raise MalformedMessage("resend: a new session needs the request's signed prekey")
            bundle = PrekeyBundle(
                device_id=device_id,
                identity_key=entry.identity_key,
                signed_prekey_id=int(signed_prekey["id"]),
                signed_prekey=b64u_decode(
                    signed_prekey["public_key"], length=32, what="signed prekey"
                ),
                signed_prekey_signature=b64u_decode(
                    signed_prekey["signature"], length=64, what="signed prekey signature"
                ),
                kem_prekey=None if kem_prekey is None else PublicKemPrekey.from_dict(kem_prekey),
            )
            session = Session.initiate(
                identity=self.device.keys.identity,
                bundle=bundle,
                listed_identity_key=entry.identity_key,
                rng=self.rng,
                device_speaks_v2=entry.speaks_v2,
            )
        body = {"envelope_id": envelope_id, "content": content}
        alias = None  # an answer without content is not kept: asked for, it says nothing new
        if content is not None and original is not None:
            alias = _Alias(
                sent_at=original.sent_at,  # it expires with the content it carries
                targets={device_id: content},
                resends={device_id: original.resends.get(device_id, 0)},
            )
        return self._prepare_one(
            recipient,
            entry,
            ContentType.RESEND,
            body,
            new_session=session,
            cache=alias if alias is not None else False,
        )

    def _listed(self, account_id: str, device_id: str) -> DeviceEntry:
        accepted = self.store.device_list(account_id)
        entry = None if accepted is None else accepted.device_list.entry(device_id)
        if entry is None:
            raise SendRefused(
                f"Device {device_id} is not in {account_id}'s verified device list.",
                code="not_listed",
            )
        return entry

    def _prepare_one(
        self,
        recipient: str,
        entry: DeviceEntry,
        content_type: ContentType,
        body: dict[str, Any],
        *,
        new_session: Session | None = None,
        cache: _Alias | bool = True,
    ) -> OutgoingMessage:
        """One content for one device (a partial send, 24.4), in `new_session` (which then
        replaces the current one, kept as the previous) or the current session; cached in
        the transaction that saves the session (24.3): the content itself (True), an alias
        of the content a resend carries, or nothing (False)."""
        own = self._accepted(self.account_id)
        content = new_content(
            content_type,
            body,
            timestamp=self.clock(),
            rng=self.rng,
            sender_list_version=own.version,
            sender_list_hash=own.hash,
        )
        encoded = encode_content(content)
        envelope_id = secrets.token_urlsafe(16)
        device_id = entry.device_id
        with self.store.transaction():
            session = new_session or self._session_for(recipient, entry, {})
            ciphertext = session.encrypt(encoded, self.rng)
            if new_session is not None:
                self.store.replace_session(
                    account_id=recipient, device_id=device_id, session=session
                )
            else:
                self.store.save_session(account_id=recipient, device_id=device_id, session=session)
            if isinstance(cache, _Alias):
                self.store.cache_sent(
                    envelope_id=envelope_id,
                    recipient=recipient,
                    sent_at=cache.sent_at,
                    targets=cache.targets,
                    resends=cache.resends,
                )
            elif cache:
                self.store.cache_sent(
                    envelope_id=envelope_id,
                    recipient=recipient,
                    sent_at=self.clock(),
                    targets={device_id: b64u_encode(encoded)},
                )
        return OutgoingMessage(
            envelope_id=envelope_id,
            recipient=recipient,
            content_type=content_type,
            body=body,
            message_id=content.message_id,
            timestamp=content.timestamp,
            recipient_devices=(device_id,) if recipient != self.account_id else (),
            own_devices=(device_id,) if recipient == self.account_id else (),
            targets={device_id: ciphertext},
            partial=True,
        )

    def _accepted(self, account_id: str) -> AcceptedList:
        accepted = self.store.device_list(account_id)
        assert accepted is not None  # the engine planned from it
        return accepted

    def _bundles_for(
        self, accounts: set[str], *, device_ids: list[str] | None = None
    ) -> dict[str, dict[str, PrekeyBundle]]:
        found: dict[str, dict[str, PrekeyBundle]] = {}
        claim = {} if device_ids is None else {"device_ids": device_ids}
        for account in sorted(accounts):
            answer = api.post(self.transport, f"/api/accounts/{account}/bundles", claim)
            bundles = answer.get("bundles") if isinstance(answer, dict) else None
            if not isinstance(bundles, list):
                raise SendRefused(
                    f"The key directory answered no bundle list for {account}.", code="bad_bundles"
                )
            found[account] = {}
            for item in bundles:
                bundle = PrekeyBundle.from_dict(item)
                found[account][bundle.device_id] = bundle
        return found

    def _session_for(
        self,
        account: str,
        entry: DeviceEntry,
        bundles: dict[str, dict[str, PrekeyBundle]],
        *,
        fresh: bool = False,
    ) -> Session:
        """The current session with the device (its key checked against the listed one) or,
        when there is none or `fresh`, a new one from its bundle in `bundles`."""
        session = None if fresh else self.store.session(entry.device_id)
        if session is not None and not outdated_for(session, entry.speaks_v2):
            if session.remote_identity_key != entry.identity_key:
                raise UntrustedIdentity(
                    f"session with device {entry.device_id!r}: identity key differs from the signed list"
                )
            return session
        bundle = bundles.get(account, {}).get(entry.device_id)
        if bundle is None:
            raise SendRefused(
                f"The key directory has no prekey bundle for {account}'s device {entry.device_id}.",
                code="no_bundle",
            )
        # verified against the key in the signed list, never the one beside the bundle; a
        # version-2 device's bundle without a KEM prekey is DowngradeRefused (27.5)
        return Session.initiate(
            identity=self.device.keys.identity,
            bundle=bundle,
            listed_identity_key=entry.identity_key,
            rng=self.rng,
            device_speaks_v2=entry.speaks_v2,
        )

    def _needs_new_session(self, entry: DeviceEntry) -> bool:
        session = self.store.session(entry.device_id)
        return session is None or outdated_for(session, entry.speaks_v2)


@dataclass(frozen=True)
class _Alias:
    """A resend's entry in the resend cache: the content it carries, with its count (24.3)."""

    sent_at: int
    targets: Mapping[str, str]
    resends: Mapping[str, int]


def _entry(device_list: DeviceList, device_id: str) -> DeviceEntry:
    entry = device_list.entry(device_id)
    assert entry is not None  # the engine plans from this list only
    return entry


def _refusal(notice: Notice) -> SendRefused:
    """The SendRefused a `send_refused` notice stands for."""
    data = notice.data
    if data.get("reason") == "mismatched_devices":
        return SendRefused(
            f"The server kept refusing the devices of {notice.account_id} after "
            f"{MAX_MISMATCH_RETRIES} retries with freshly verified device lists "
            f"(missing {data.get('missing')}, extra {data.get('extra')}, stale {data.get('stale')}).",
            code="mismatched_devices",
        )
    if data.get("reason") == "blocked":
        return SendRefused(
            f"You blocked {notice.account_id}: nothing is sent to them. Unblock them on one of "
            "your devices first.",
            code="blocked",
        )
    if data.get("reason") == "device_removed":
        return SendRefused(
            "This device is no longer in your account's signed device list.",
            code="device_removed",
        )
    return SendRefused(
        f"No verified device list to send to {notice.account_id} ({data.get('reason')}).",
        code=str(data.get("reason")),
    )
