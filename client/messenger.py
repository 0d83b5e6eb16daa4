"""Sending and receiving end-to-end-encrypted messages (DESIGN §3 and §7, docs/protocol.md
sections 7, 9 and 10), over the store and a transport for the key directory.

`Messenger` turns a text into a `send` frame and a delivered envelope into events; it opens
no socket (client.connection does). Every list it encrypts to passed the six checks of
section 4.3, every prekey bundle is checked against the key in that signed list, and a
contact's account key is pinned at first use.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from client import api
from client.api import Transport
from client.driver import EngineDriver, SecurityCodeChanged
from client.linking import ONE_TIME_PREKEYS
from client.store import AcceptedList, OwnDevice, Store, now_ms
from protocol.content import (
    Content,
    ContentType,
    decode_content,
    encode_content,
    new_content,
)
from protocol.devicelist import DeviceEntry, DeviceList
from protocol.encoding import b64u_decode, b64u_encode
from protocol.engine import (
    LIST_MAX_AGE_MS,
    ContentReceived,
    ContentVerdict,
    Effect,
    ListWanted,
    Notice,
    SenderSeen,
)
from protocol.exceptions import (
    DecryptionFailed,
    ProtocolError,
    ReplayDetected,
    UnknownSession,
    UntrustedIdentity,
)
from protocol.fanout import encrypt_for_devices
from protocol.keys import PrekeyBundle, X25519KeyPair
from protocol.message import PrekeyMessage, decode_message
from protocol.ratchet import Session, accept_prekey_message
from protocol.rng import Rng, system_rng

MAX_MISMATCH_RETRIES = 3  # docs/protocol.md section 20
MAX_RECEIPT_IDS = 100
__all__ = ["LIST_MAX_AGE_MS", "SecurityCodeChanged"]  # re-exported: rules live in the engine


class SendRefused(Exception):
    """This client will not send (or the server kept refusing); `message` says why."""

    def __init__(self, message: str, *, code: str, cause: BaseException | None = None):
        super().__init__(message)
        self.code = code
        self.cause = cause


# ---------------------------------------------------------------- what receiving yields


@dataclass(frozen=True)
class TextMessage:
    """A text from a contact's device."""

    sender: str
    sender_device: str
    message_id: bytes
    timestamp: int
    text: str


@dataclass(frozen=True)
class SentTranscript:
    """A text this account sent from another of its own devices (section 10, type 3)."""

    recipient: str
    sender_device: str
    message_id: bytes
    timestamp: int
    text: str


@dataclass(frozen=True)
class ReceiptReceived:
    sender: str
    sender_device: str
    kind: str
    message_ids: tuple[bytes, ...]


@dataclass(frozen=True)
class DevicesChanged:
    """A newer signed list of the account was verified and accepted."""

    account_id: str
    version: int


@dataclass(frozen=True)
class Refused:
    """An envelope this client dropped, and why (shown to the user, never silently lost)."""

    sender: str
    sender_device: str
    envelope_id: str
    reason: str
    error: BaseException | None = None

    @property
    def code(self) -> str:
        return getattr(self.error, "code", "refused")


@dataclass(frozen=True)
class Duplicate:
    """A content already received (at-least-once delivery makes these normal; section 10.1)."""

    sender: str
    sender_device: str
    envelope_id: str


@dataclass(frozen=True)
class ListWarning:
    """Freeze or fork of an account's list (section 10.1): the server may be withholding."""

    account_id: str
    message: str


Event = (
    TextMessage
    | SentTranscript
    | ReceiptReceived
    | DevicesChanged
    | Refused
    | Duplicate
    | ListWarning
)


# ---------------------------------------------------------------- what sending yields


@dataclass(frozen=True)
class OutgoingMessage:
    """One `send` frame and what went into it; `retry` rebuilds it after mismatched_devices."""

    envelope_id: str
    recipient: str
    content_type: ContentType
    body: dict[str, Any]
    message_id: bytes
    timestamp: int
    recipient_devices: tuple[str, ...]
    own_devices: tuple[str, ...]
    targets: dict[str, bytes] = field(repr=False)
    attempt: int = 1

    @property
    def frame(self) -> dict[str, Any]:
        return {
            "type": "send",
            "v": 1,
            "id": self.envelope_id,
            "recipient": self.recipient,
            "targets": {d: b64u_encode(c) for d, c in self.targets.items()},
        }


class _OneTimePrekeys(Mapping[int, X25519KeyPair]):
    """The store's one-time prekeys, read one at a time (there may be a hundred)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def __getitem__(self, prekey_id: int) -> X25519KeyPair:
        row = self._store._one(
            "SELECT private_key FROM one_time_prekeys WHERE id = ?", (prekey_id,)
        )
        if row is None:
            raise KeyError(prekey_id)
        return X25519KeyPair.from_private(bytes(row[0]))

    def __iter__(self) -> Iterator[int]:
        return iter(k.id for k in self._store.one_time_prekeys())

    def __len__(self) -> int:
        return len(self._store.one_time_prekeys())


class Messenger:
    def __init__(
        self,
        store: Store,
        transport: Transport,
        *,
        rng: Rng = system_rng,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        device = store.device()
        if device is None:
            raise ValueError(f"{store.path} holds no device")
        self.store = store
        self.device: OwnDevice = device
        self.rng = rng
        self.clock = clock
        self.engine = EngineDriver(store, transport, device, lambda: self.clock())

    @property
    def account_id(self) -> str:
        return self.device.account_id

    @property
    def transport(self) -> Transport:
        return self.engine.transport

    @transport.setter
    def transport(self, transport: Transport) -> None:
        self.engine.transport = transport

    @property
    def suspended(self) -> dict[str, frozenset[str]]:
        return self.engine.suspended

    # ------------------------------------------------------------ device lists

    def refresh_list(self, account_id: str) -> AcceptedList:
        """Fetch and verify an account's list (the engine's rules: the own one under the own
        account key, a contact's under the key pinned at first use)."""
        return self.current_list(account_id, refresh=True)

    def current_list(self, account_id: str, *, refresh: bool = False) -> AcceptedList:
        """The accepted list, fetched first when missing, stale or `refresh`; a refusal raises."""
        effects = self.engine.run(ListWanted(account_id, self.clock(), refresh), account_id)
        self.engine.raise_for(account_id, effects)
        accepted = self.store.device_list(account_id)
        assert accepted is not None  # stored by the run, or fresh in the cache
        return accepted

    def _active(self, account_id: str, device_list: DeviceList) -> list[DeviceEntry]:
        suspended = self.suspended.get(account_id, frozenset())
        return [d for d in device_list.devices if d.device_id not in suspended]

    # ------------------------------------------------------------ prekeys

    def refill_prekeys(self) -> int:
        """Top the server's pool of one-time prekeys back up to ONE_TIME_PREKEYS (the server
        says `prekeys_low`); the private halves are kept before the public ones go out.
        Returns how many were uploaded."""
        answer = api.get(self.transport, "/api/prekeys")
        count = answer.get("one_time_prekeys") if isinstance(answer, dict) else None
        if not isinstance(count, int) or count >= ONE_TIME_PREKEYS:
            return 0
        fresh = self.store.new_one_time_prekeys(ONE_TIME_PREKEYS - count, self.rng)
        api.post(
            self.transport,
            "/api/prekeys",
            {
                "one_time_prekeys": [
                    {"id": k.id, "public_key": b64u_encode(k.key.public)} for k in fresh
                ]
            },
        )
        return len(fresh)

    # ------------------------------------------------------------ sending

    def prepare_send(self, recipient: str, text: str) -> OutgoingMessage:
        """The `send` frame for a text: one ciphertext per device of the recipient, and a
        sent transcript for every other device of this account (section 9)."""
        return self._prepare_new(recipient, ContentType.TEXT, {"text": text})

    def prepare_receipt(
        self, recipient: str, message_ids: list[bytes], *, kind: str = "delivered"
    ) -> OutgoingMessage:
        body = {"kind": kind, "message_ids": [b64u_encode(m) for m in message_ids]}
        return self._prepare_new(recipient, ContentType.RECEIPT, body)

    def retry(self, outgoing: OutgoingMessage, data: Mapping[str, Any]) -> OutgoingMessage:
        """After `mismatched_devices`: refetch and verify both lists, then encrypt again
        (the same content and envelope id), at most MAX_MISMATCH_RETRIES times."""
        if outgoing.attempt > MAX_MISMATCH_RETRIES:
            raise SendRefused(
                f"The server kept refusing the devices of {outgoing.recipient} after "
                f"{MAX_MISMATCH_RETRIES} retries with freshly verified device lists "
                f"(missing {data.get('missing')}, extra {data.get('extra')}, stale {data.get('stale')}).",
                code="mismatched_devices",
            )
        stale = data.get("stale")
        for account in (self.account_id, outgoing.recipient):
            self.refresh_list(account)
            if isinstance(stale, list):
                # stale = logged out but still signed: a suspension only shrinks the set
                self.suspended[account] = self.suspended[account] | {
                    s for s in stale if isinstance(s, str)
                }
        return self._prepare(
            envelope_id=outgoing.envelope_id,
            recipient=outgoing.recipient,
            content_type=outgoing.content_type,
            body=outgoing.body,
            message_id=outgoing.message_id,
            timestamp=outgoing.timestamp,
            attempt=outgoing.attempt + 1,
            refresh=False,
        )

    def _prepare_new(
        self, recipient: str, content_type: ContentType, body: dict[str, Any]
    ) -> OutgoingMessage:
        if recipient == self.account_id:
            raise SendRefused(
                "Your own devices get what you send as sent transcripts; pick a contact.",
                code="own_account",
            )
        return self._prepare(
            envelope_id=secrets.token_urlsafe(16),
            recipient=recipient,
            content_type=content_type,
            body=body,
            message_id=self.rng(16),
            timestamp=self.clock(),
            attempt=1,
            refresh=False,
        )

    def _prepare(
        self,
        *,
        envelope_id: str,
        recipient: str,
        content_type: ContentType,
        body: dict[str, Any],
        message_id: bytes,
        timestamp: int,
        attempt: int,
        refresh: bool,
    ) -> OutgoingMessage:
        own = self.current_list(self.account_id, refresh=refresh)
        theirs = self.current_list(recipient, refresh=refresh)
        if own.device_list.entry(self.device.device_id) is None:
            raise SendRefused(
                "This device is no longer in your account's signed device list.",
                code="device_removed",
            )
        recipient_entries = self._active(recipient, theirs.device_list)
        own_entries = [
            d
            for d in self._active(self.account_id, own.device_list)
            if d.device_id != self.device.device_id
        ]
        targets = [(recipient, e) for e in recipient_entries] + [
            (self.account_id, e) for e in own_entries
        ]
        bundles = self._bundles_for(
            {a for a, e in targets if self.store.session(e.device_id) is None}
        )
        stamp: dict[str, Any] = {"sender_list_version": own.version, "sender_list_hash": own.hash}
        content = Content(
            type=content_type,
            message_id=message_id,
            timestamp=timestamp,
            **stamp,
            body=body,
        )
        encoded = encode_content(content)
        transcript = new_content(
            ContentType.SENT_TRANSCRIPT,
            {"recipient": recipient, "content": b64u_encode(encoded)},
            timestamp=timestamp,
            rng=self.rng,
            **stamp,
        )
        with self.store.transaction():
            sessions: dict[str, Session] = {}
            accounts: dict[str, str] = {}
            for account, entry in targets:
                sessions[entry.device_id] = self._session_for(account, entry, bundles)
                accounts[entry.device_id] = account
            ciphertexts = encrypt_for_devices(
                encoded, {e.device_id: sessions[e.device_id] for e in recipient_entries}, self.rng
            )
            ciphertexts |= encrypt_for_devices(
                encode_content(transcript),
                {e.device_id: sessions[e.device_id] for e in own_entries},
                self.rng,
            )
            for device_id, session in sessions.items():
                self.store.save_session(
                    account_id=accounts[device_id], device_id=device_id, session=session
                )
        return OutgoingMessage(
            envelope_id=envelope_id,
            recipient=recipient,
            content_type=content_type,
            body=body,
            message_id=message_id,
            timestamp=timestamp,
            recipient_devices=tuple(e.device_id for e in recipient_entries),
            own_devices=tuple(e.device_id for e in own_entries),
            targets=ciphertexts,
            attempt=attempt,
        )

    def _bundles_for(self, accounts: set[str]) -> dict[str, dict[str, PrekeyBundle]]:
        found: dict[str, dict[str, PrekeyBundle]] = {}
        for account in sorted(accounts):
            answer = api.post(self.transport, f"/api/accounts/{account}/bundles", {})
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
        self, account: str, entry: DeviceEntry, bundles: dict[str, dict[str, PrekeyBundle]]
    ) -> Session:
        session = self.store.session(entry.device_id)
        if session is not None:
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
        # verified against the key in the signed list, never the one beside the bundle
        return Session.initiate(
            identity=self.device.keys.identity,
            bundle=bundle,
            listed_identity_key=entry.identity_key,
            rng=self.rng,
        )

    # ------------------------------------------------------------ receiving

    def receive(self, envelope: Mapping[str, Any]) -> list[Event]:
        """Decrypt one delivered envelope and apply it; the caller acks it afterwards.

        Never raises for what a server or sender can cause: a refusal is a `Refused` event.
        """
        sender = str(envelope.get("sender"))
        sender_device = str(envelope.get("sender_device"))
        envelope_id = str(envelope.get("id"))

        def refused(reason: str, error: BaseException | None = None) -> list[Event]:
            return [Refused(sender, sender_device, envelope_id, reason, error)]

        try:
            ciphertext = b64u_decode(str(envelope.get("ciphertext")), what="envelope ciphertext")
            entry = self._sender_entry(sender, sender_device)
        except (ProtocolError, api.ApiError, SendRefused) as error:
            return refused(f"could not verify the sender's device list: {error}", error)
        if entry is None:
            return refused(f"device {sender_device} is not in {sender}'s signed device list")
        try:
            with self.store.transaction():
                content = decode_content(self._decrypt(sender, entry, ciphertext))
                if not self.store.remember_message(
                    sender_device_id=sender_device, message_id=content.message_id
                ):
                    return [Duplicate(sender, sender_device, envelope_id)]
        except ReplayDetected as error:
            return refused(f"replayed message refused: {error}", error)
        except ProtocolError as error:
            return refused(f"could not decrypt: {error}", error)
        received = ContentReceived(
            sender,
            sender_device,
            content.type,
            content.sender_list_version,
            content.sender_list_hash,
            self.clock(),
        )
        effects = self.engine.run(received, sender)
        events = self._list_events(sender, effects)
        verdict = next(e for e in effects if isinstance(e, ContentVerdict))
        if verdict.verdict == "refuse":
            what = content.type.name.lower().replace("_", " ")
            return events + refused(
                f"a {what} from {sender}'s device {sender_device}, which is not one of your own devices"
            )
        return events + self._apply(sender, entry, content, events)

    def _sender_entry(self, sender: str, sender_device: str) -> DeviceEntry | None:
        """The sender device's entry in a verified list (fetched when the cache lacks it)."""
        effects = self.engine.run(SenderSeen(sender, sender_device, self.clock()), sender)
        self.engine.raise_for(sender, effects)
        cached = self.store.device_list(sender)
        return None if cached is None else cached.device_list.entry(sender_device)

    def _decrypt(self, account: str, entry: DeviceEntry, ciphertext: bytes) -> bytes:
        """Section 7.1; call inside a store transaction (session and replay memory commit
        together with the message id)."""
        message = decode_message(ciphertext)
        current = self.store.session(entry.device_id)
        previous = self.store.previous_session(entry.device_id)
        for session in (current, previous):
            if session is not None and session.remote_identity_key != entry.identity_key:
                raise UntrustedIdentity(
                    f"session with device {entry.device_id!r}: identity key differs from the signed list"
                )
        if isinstance(message, PrekeyMessage):
            for session, is_current in ((current, True), (previous, False)):
                if (
                    session is not None
                    and session.role == "responder"
                    and session.base_key == message.base_key
                ):
                    plaintext = session.decrypt(ciphertext, self.rng)
                    self._keep(account, entry.device_id, session, is_current=is_current)
                    return plaintext
            inbound = accept_prekey_message(
                ciphertext,
                identity=self.device.keys.identity,
                signed_prekeys={s.id: s.key for s in self.store.signed_prekeys()},
                one_time_prekeys=_OneTimePrekeys(self.store),
                sender_identity_key=entry.identity_key,
                used_base_keys=self.store.used_base_keys,
                rng=self.rng,
            )
            self.store.record_base_key(inbound.base_key)
            if inbound.one_time_prekey_id is not None:
                self.store.take_one_time_prekey(inbound.one_time_prekey_id)
            self.store.replace_session(
                account_id=account, device_id=entry.device_id, session=inbound.session
            )
            return inbound.plaintext
        if current is None and previous is None:
            raise UnknownSession(f"no session with device {entry.device_id!r}")
        failure: ProtocolError | None = None
        for session, is_current in ((current, True), (previous, False)):
            if session is None:
                continue
            try:
                plaintext = session.decrypt(ciphertext, self.rng)
            except (DecryptionFailed, UnknownSession) as error:
                failure = failure or error
                continue
            self._keep(account, entry.device_id, session, is_current=is_current)
            return plaintext
        assert failure is not None
        raise failure

    def _keep(self, account: str, device_id: str, session: Session, *, is_current: bool) -> None:
        if is_current:
            self.store.save_session(account_id=account, device_id=device_id, session=session)
        else:  # the older session is the one the other side kept using: it becomes current
            self.store.replace_session(account_id=account, device_id=device_id, session=session)

    def _list_events(self, sender: str, effects: list[Effect]) -> list[Event]:
        """The engine's list notices after a content (freeze check, own-list notice)."""
        events: list[Event] = []
        for notice in (e for e in effects if isinstance(e, Notice)):
            account, data = notice.account_id, notice.data
            if notice.code == "devices_changed":
                events.append(DevicesChanged(account, data["version"]))
            elif notice.code == "list_withheld":
                events.append(
                    ListWarning(
                        account,
                        f"{account}'s device signed with list version {data['claimed']}, "
                        f"but the server serves version {data['served']} (withheld?).",
                    )
                )
            elif notice.code == "list_forked":
                events.append(
                    ListWarning(
                        account,
                        f"{account}'s device list {data['version']} differs from the one their "
                        "device signed with (a forked list); be careful.",
                    )
                )
            elif account == self.account_id and data.get("reason") == "notice":
                error = self.engine.error(notice)
                events.append(ListWarning(account, f"own device list refused: {error}"))
            else:
                error = self.engine.error(notice)
                events.append(
                    ListWarning(account, f"could not verify {account}'s newer device list: {error}")
                )
        return events

    def _apply(
        self, sender: str, entry: DeviceEntry, content: Content, events: list[Event]
    ) -> list[Event]:
        """An accepted content (the engine decided who may send which, section 22.4)."""
        device_id = entry.device_id
        kind = content.type
        if kind is ContentType.TEXT:
            return [
                TextMessage(
                    sender, device_id, content.message_id, content.timestamp, content.body["text"]
                )
            ]
        if kind is ContentType.RECEIPT:
            return [
                ReceiptReceived(
                    sender,
                    device_id,
                    content.body["kind"],
                    tuple(b64u_decode(m, length=16) for m in content.body["message_ids"]),
                )
            ]
        if kind is ContentType.SENT_TRANSCRIPT:
            inner = decode_content(b64u_decode(content.body["content"]))
            if inner.type is ContentType.TEXT:
                return [
                    SentTranscript(
                        content.body["recipient"],
                        device_id,
                        inner.message_id,
                        inner.timestamp,
                        inner.body["text"],
                    )
                ]
            return []  # a receipt another own device sent: nothing to show
        if kind is ContentType.DEVICE_LIST_NOTICE:
            told = any(
                isinstance(e, (DevicesChanged, ListWarning)) and e.account_id == self.account_id
                for e in events
            )
            own = self.store.device_list(self.account_id)
            if told or own is None:
                return []
            return [DevicesChanged(self.account_id, own.version)]
        return []  # history bundles are not handled by this client yet


def format_time(timestamp_ms: int) -> str:
    return time.strftime("%H:%M:%S", time.localtime(timestamp_ms / 1000))


def describe(event: Event, *, me: str) -> str | None:
    """One line for a person; None for what is not worth showing."""
    if isinstance(event, TextMessage):
        return f"[{format_time(event.timestamp)}] {event.sender}: {event.text}"
    if isinstance(event, SentTranscript):
        return f"[{format_time(event.timestamp)}] you → {event.recipient}: {event.text}"
    if isinstance(event, ReceiptReceived):
        n = len(event.message_ids)
        what = "your message" if n == 1 else f"{n} of your messages"
        return f"{event.kind.capitalize()}: {what} to {event.sender} (device {event.sender_device})"
    if isinstance(event, DevicesChanged):
        return f"{event.account_id}'s devices changed (list version {event.version})"
    if isinstance(event, Refused):
        return (
            f"Refused a message from {event.sender} (device {event.sender_device}): {event.reason}"
        )
    if isinstance(event, ListWarning):
        return f"Warning about {event.account_id}: {event.message}"
    return None
