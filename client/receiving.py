"""Receiving (docs/protocol.md sections 7.1 and 10): one delivered envelope decrypted from a
device of a verified list, checked by the device engine, applied as events. A refusal is an
event too, never an exception."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from client import api
from client.events import (
    DevicesChanged,
    Duplicate,
    Event,
    FileMessage,
    ListWarning,
    ReadElsewhere,
    ReceiptOwed,
    ReceiptReceived,
    Refused,
    SentTranscript,
    TextMessage,
    UnsupportedMessage,
)
from client.groups import GroupMember, GroupRefused
from client.retrying import Retrier
from client.sending import SendRefused
from client.store import Store
from protocol.attachments import AttachmentPointer
from protocol.content import Content, ContentType, decode_content
from protocol.devicelist import DeviceEntry
from protocol.encoding import b64u_decode, b64u_encode
from protocol.engine import (
    AcceptGroupKey,
    AcceptGroupReceipt,
    AcceptResend,
    AcceptRetryRequest,
    AcceptSyncCheckpoint,
    AcceptSyncKey,
    ApplyReceipt,
    ContentDecrypted,
    ContentReceived,
    ContentVerdict,
    DropDuplicate,
    Effect,
    ForgetRetry,
    MarkRead,
    Notice,
    SendContent,
    SenderSeen,
    StoreMessage,
    StoreRetry,
    read_state,
    seen_key,
)
from protocol.exceptions import (
    DecryptionFailed,
    ProtocolError,
    ReplayDetected,
    UnknownSession,
    UntrustedIdentity,
)
from protocol.inbound import accept_prekey_message
from protocol.keys import X25519KeyPair
from protocol.message import PrekeyMessage, RatchetMessage, decode_message
from protocol.ratchet import Session

# refusals that are normal and need no word to the person: a second history key, and a
# second answer to an ask already answered (docs/protocol.md 24.2)
QUIET_REFUSALS = frozenset({"no_history_expected", "not_asked"})


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


class _Undecrypted(Exception):
    """An envelope that did not decrypt (or held no content): rolls its transaction back."""

    def __init__(self, error: ProtocolError) -> None:
        super().__init__(str(error))
        self.error = error


def _is_ms(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**53


def _lost_session(device_id: str) -> UnknownSession:
    """A prekey message whose base key this device used, while no session it holds has that
    key: the session was lost (storage cleared, restored from a copy), so it is asked for
    again (docs/protocol.md 24.1), not dropped as a replay. A replay of a message of a session
    this device still holds is refused by that session."""
    return UnknownSession(
        f"prekey message from device {device_id!r}: its session is no longer held here"
    )


class Receiver(Retrier, GroupMember):
    def receive(self, envelope: Mapping[str, Any]) -> list[Event]:
        """Decrypt one delivered envelope and apply it; the caller acks it afterwards. An
        envelope of a group send goes to the group machine (client.groups).

        Never raises for what a server or sender can cause: a refusal is a `Refused` event.
        """
        if envelope.get("group") is not None:
            try:
                return self.group_envelope(envelope, self._pairwise)
            except (GroupRefused, api.ApiError, api.ServerUnreachable, SendRefused) as error:
                sender, device = str(envelope.get("sender")), str(envelope.get("sender_device"))
                return [Refused(sender, device, str(envelope.get("id")), str(error), error)]
        return self._pairwise(envelope)

    def _pairwise(self, envelope: Mapping[str, Any]) -> list[Event]:
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
            # the session, the replay memory, the seen id and the message it held commit
            # together or not at all (docs/protocol.md 24.5): a crash in between leaves the
            # envelope unacked and undecrypted, and its redelivery shows it
            with self.store.transaction():
                try:
                    content = decode_content(self._decrypt(sender, entry, ciphertext))
                except ProtocolError as error:
                    raise _Undecrypted(error) from error
                return self._content(sender, sender_device, envelope_id, content)
        except _Undecrypted as failure:
            if isinstance(failure.error, ReplayDetected):  # not a failure: nothing to ask for
                return refused(f"replayed message refused: {failure.error}", failure.error)
            sent_at = envelope.get("sent_at")
            return self.undecrypted(
                sender=sender,
                sender_device=sender_device,
                envelope_id=envelope_id,
                sent_at=sent_at if isinstance(sent_at, int) and _is_ms(sent_at) else self.clock(),
                error=failure.error,
            )

    def _content(
        self, sender: str, sender_device: str, envelope_id: str, content: Content
    ) -> list[Event]:
        """A content decrypted from the sender's device, checked by the engine and applied
        (call inside the transaction of its decryption)."""

        def refused(reason: str) -> list[Event]:
            return [Refused(sender, sender_device, envelope_id, reason)]

        fresh = self.store.remember_message(
            sender_device_id=sender_device, message_id=content.message_id
        )
        decrypted = ContentDecrypted(
            sender,
            sender_device,
            int(content.type),
            b64u_encode(content.message_id),
            content.timestamp,
            content.body,
            self.clock(),
        )
        if not fresh:  # the engine drops what this device applied before (section 22.6)
            seen = frozenset({seen_key(sender_device, decrypted.message_id)})
            if any(isinstance(e, DropDuplicate) for e in self.engine.run(decrypted, seen=seen)):
                return [Duplicate(sender, sender_device, envelope_id)]
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
            what = ContentType(content.type).name.lower().replace("_", " ")
            return events + refused(
                f"a {what} from {sender}'s device {sender_device}, which is not one of your own devices"
            )
        if content.type is ContentType.DEVICE_LIST_NOTICE:
            return events + self._own_list_notice(events)
        return events + self._apply(decrypted, self.engine.run(decrypted, sender), refused)

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
        held: list[tuple[Session, int | None]] = [] if current is None else [(current, None)]
        failure: ProtocolError | None = None
        if isinstance(message, RatchetMessage) and held:  # most messages: the current one
            try:
                return self._decrypt_in(account, entry, ciphertext, message, held)
            except (DecryptionFailed, UnknownSession) as error:
                failure, held = error, []
        # the sessions the current one replaced, newest first, read only when needed
        held += [(s, row_id) for row_id, s in self.store.archived_sessions(entry.device_id)]
        return self._decrypt_in(account, entry, ciphertext, message, held, failure=failure)

    def _decrypt_in(
        self,
        account: str,
        entry: DeviceEntry,
        ciphertext: bytes,
        message: PrekeyMessage | RatchetMessage,
        held: list[tuple[Session, int | None]],
        *,
        failure: ProtocolError | None = None,
    ) -> bytes:
        """Decrypt with one of `held` (each with its archive id; None: the current one), or a
        prekey message of none of them in a new session; `failure`: the current session's
        error when it was tried before these."""
        for session, _ in held:
            if session.remote_identity_key != entry.identity_key:
                raise UntrustedIdentity(
                    f"session with device {entry.device_id!r}: identity key differs from the signed list"
                )
        if isinstance(message, PrekeyMessage):
            for session, archived in held:
                if session.role == "responder" and session.base_key == message.base_key:
                    plaintext = session.decrypt(ciphertext, self.rng)
                    self._keep(account, entry.device_id, session, archived)
                    return plaintext
            if message.base_key in self.store.used_base_keys:
                raise _lost_session(entry.device_id)
            inbound = accept_prekey_message(
                ciphertext,
                identity=self.device.keys.identity,
                signed_prekeys={s.id: s.key for s in self.store.signed_prekeys()},
                one_time_prekeys=_OneTimePrekeys(self.store),
                kem_prekeys=self.store.kem_prekeys(self.device.keys.identity)
                if message.version == 2
                else {},
                sender_identity_key=entry.identity_key,
                used_base_keys=self.store.used_base_keys,
                rng=self.rng,
                sender_speaks_v2=entry.speaks_v2,  # a version-1 start is a downgrade (27.5)
            )
            self.store.record_base_key(inbound.base_key)
            if inbound.one_time_prekey_id is not None:
                self.store.take_one_time_prekey(inbound.one_time_prekey_id)
            if inbound.one_time_kem_prekey_id is not None:
                self.store.take_kem_prekey(inbound.one_time_kem_prekey_id)
            self.store.replace_session(
                account_id=account, device_id=entry.device_id, session=inbound.session
            )
            return inbound.plaintext
        if not held and failure is None:
            raise UnknownSession(f"no session with device {entry.device_id!r}")
        for session, archived in held:
            try:
                plaintext = session.decrypt(ciphertext, self.rng)
            except (DecryptionFailed, UnknownSession) as error:
                failure = failure or error
                continue
            self._keep(account, entry.device_id, session, archived)
            return plaintext
        assert failure is not None
        raise failure

    def _keep(self, account: str, device_id: str, session: Session, archived: int | None) -> None:
        if archived is None:
            self.store.save_session(account_id=account, device_id=device_id, session=session)
        else:  # an older session is the one the other side kept using: it becomes current
            self.store.replace_session(
                account_id=account, device_id=device_id, session=session, archived=archived
            )

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
        self,
        content: ContentDecrypted,
        effects: list[Effect],
        refused: Callable[[str], list[Event]],
    ) -> list[Event]:
        """The engine's effects of an accepted content as events (section 22.6). This client
        never awaits a history key."""
        events: list[Event] = []
        for effect in effects:
            if isinstance(effect, StoreMessage):
                self._keep_message(effect.record)
            if isinstance(effect, StoreMessage) and effect.record["kind"] == "text":
                record = effect.record
                message_id = b64u_decode(record["id"], length=16)
                if record["outgoing"]:
                    events.append(
                        SentTranscript(
                            record["conversation"],
                            record["author_device"],
                            message_id,
                            record["timestamp"],
                            record["text"],
                        )
                    )
                else:
                    events.append(
                        TextMessage(
                            record["author"],
                            record["author_device"],
                            message_id,
                            record["timestamp"],
                            record["text"],
                        )
                    )
            elif isinstance(effect, StoreMessage) and effect.record["kind"] == "attachment":
                record = effect.record
                events.append(
                    FileMessage(
                        record["conversation"],
                        record["author_device"],
                        b64u_decode(record["id"], length=16),
                        record["timestamp"],
                        AttachmentPointer.from_body(record["attachment"]),
                        outgoing=record["outgoing"],
                    )
                )
            elif isinstance(effect, StoreMessage) and effect.record["kind"] == "unsupported":
                record = effect.record
                events.append(
                    UnsupportedMessage(
                        record["author"],
                        record["author_device"],
                        b64u_decode(record["id"], length=16),
                        record["timestamp"],
                        record["content_type"],
                    )
                )
            elif isinstance(effect, ApplyReceipt):
                events.append(
                    ReceiptReceived(
                        effect.peer,
                        content.sender_device,
                        effect.receipt,
                        tuple(b64u_decode(m, length=16) for m in effect.message_ids),
                    )
                )
            elif isinstance(effect, SendContent) and effect.content_type == ContentType.RECEIPT:
                ids = tuple(b64u_decode(m, length=16) for m in effect.body["message_ids"])
                events.append(ReceiptOwed(effect.recipient, effect.body["kind"], ids))
            elif isinstance(effect, MarkRead):  # read on another own device
                count = self.store.mark_read(effect.peer, effect.message_ids)
                if count:
                    events.append(ReadElsewhere(effect.peer, count))
            elif isinstance(
                effect, AcceptSyncKey
            ):  # from an own listed device (the engine's check)
                run = self.sync.key_received(effect.sender_device, dict(effect.body))
                events += self.synced_events(run)
            elif isinstance(effect, AcceptGroupKey):  # to its group's machine, which checks
                events += self.group_key_received(
                    effect.sender, effect.sender_device, dict(effect.body)
                )
            elif isinstance(effect, AcceptGroupReceipt):  # the same: is the sender a member?
                events += self.group_receipt_received(
                    effect.sender, effect.sender_device, dict(effect.body)
                )
            elif isinstance(effect, AcceptSyncCheckpoint):  # the same check
                run = self.sync.checkpoint_received(effect.sender_device, dict(effect.body))
                events += self.synced_events(run)
            elif isinstance(effect, StoreRetry):  # a resend saying the message is gone
                events += self.retry_effects([effect])
            elif isinstance(effect, ForgetRetry):  # the message came: its line goes
                self.store.forget_retry(effect.sender_device, effect.envelope_id)
            elif isinstance(effect, AcceptRetryRequest):
                events += self.retry_requested(effect.sender, effect.sender_device, effect.body)
            elif isinstance(effect, AcceptResend):  # the content, as if it had come first
                inner = decode_content(b64u_decode(effect.content, what="resend content"))
                events += self._content(
                    effect.sender, effect.sender_device, effect.envelope_id, inner
                )
            elif isinstance(effect, ContentVerdict) and effect.reason not in QUIET_REFUSALS:
                events += refused(f"content refused: {effect.reason}")
        return events

    def _keep_message(self, record: Mapping[str, Any]) -> None:
        """Keep the message for `chats` and `read`: an own message, one this version cannot
        show, and a text the account's synced read position covers are read already."""
        peer = record["conversation"]
        value = self.sync.state.account.get("conversations", (peer,))
        if record["kind"] != "text" or record["outgoing"]:
            read = True
        else:
            read = bool(read_state([record], value)["read"])
        self.store.save_message(record, read=read)

    def _own_list_notice(self, events: list[Event]) -> list[Event]:
        """A device-list notice from an own device: its fetch was the engine's; say the list
        changed if nothing else did."""
        told = any(
            isinstance(e, (DevicesChanged, ListWarning)) and e.account_id == self.account_id
            for e in events
        )
        own = self.store.device_list(self.account_id)
        if told or own is None:
            return []
        return [DevicesChanged(self.account_id, own.version)]
