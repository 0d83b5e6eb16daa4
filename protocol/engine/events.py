"""What happens to a device, as the engine's input (docs/protocol.md section 22.1).

Every event carries `now` (ms): the clock is an input, never read inside the engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from protocol.encoding import b64u_decode, b64u_encode
from protocol.engine.groupstate import Lists, lists_from_dict, lists_to_dict
from protocol.exceptions import MalformedMessage


@dataclass(frozen=True)
class FrameReceived:
    """A frame the server sent on the device socket."""

    kind: ClassVar[str] = "frame_received"
    frame: Mapping[str, Any]
    now: int

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "frame": dict(self.frame), "now": self.now}


@dataclass(frozen=True)
class HttpAnswered:
    """The server's answer to an `HttpRequest` effect, by its request id."""

    kind: ClassVar[str] = "http_answered"
    request_id: str
    status: int
    body: Any
    now: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "request_id": self.request_id,
            "status": self.status,
            "body": self.body,
            "now": self.now,
        }


@dataclass(frozen=True)
class ListWanted:
    """The app is about to use an account's list (a send, adding a contact); `refresh`
    asks for the server's current list whatever the cache holds."""

    kind: ClassVar[str] = "list_wanted"
    account_id: str
    now: int
    refresh: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "account_id": self.account_id,
            "refresh": self.refresh,
            "now": self.now,
        }


@dataclass(frozen=True)
class SenderSeen:
    """An envelope arrived from this account's device; its key must come from a signed list."""

    kind: ClassVar[str] = "sender_seen"
    sender: str
    sender_device: str
    now: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "sender": self.sender,
            "sender_device": self.sender_device,
            "now": self.now,
        }


@dataclass(frozen=True)
class ContentReceived:
    """A content decrypted from `sender_device` (new, not a duplicate): its type and the
    sender's list stamp (section 10.1)."""

    kind: ClassVar[str] = "content_received"
    sender: str
    sender_device: str
    content_type: int
    sender_list_version: int
    sender_list_hash: bytes
    now: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "sender": self.sender,
            "sender_device": self.sender_device,
            "content_type": self.content_type,
            "sender_list_version": self.sender_list_version,
            "sender_list_hash": b64u_encode(self.sender_list_hash),
            "now": self.now,
        }


@dataclass(frozen=True)
class ContentDecrypted:
    """A content decrypted from `sender_device`, to apply (section 22.6): its type (perhaps
    one this device does not know), the message id inside the ciphertext (b64u) and body."""

    kind: ClassVar[str] = "content_decrypted"
    sender: str
    sender_device: str
    content_type: int
    message_id: str
    timestamp: int
    body: Mapping[str, Any]
    now: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "sender": self.sender,
            "sender_device": self.sender_device,
            "content_type": self.content_type,
            "message_id": self.message_id,
            "timestamp": self.timestamp,
            "body": dict(self.body),
            "now": self.now,
        }


@dataclass(frozen=True)
class SendWanted:
    """The person sends a content to `recipient` (a contact, or the own account for a
    content to own devices only); `envelope_id` names the send in every answer."""

    kind: ClassVar[str] = "send_wanted"
    envelope_id: str
    recipient: str
    now: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "envelope_id": self.envelope_id,
            "recipient": self.recipient,
            "now": self.now,
        }


@dataclass(frozen=True)
class MessagesRead:
    """The person read these messages (b64u ids) of the conversation with `peer`."""

    kind: ClassVar[str] = "messages_read"
    peer: str
    message_ids: tuple[str, ...]
    now: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "peer": self.peer,
            "message_ids": list(self.message_ids),
            "now": self.now,
        }


@dataclass(frozen=True)
class SyncMutated:
    """The person changed what follows the account (section 22.8): each mutation is
    (collection, index, value | None), stamped with `now` and this device. `seed`: 32 fresh
    random bytes from the adapter, the only randomness the sync machine uses (nonces, keys)."""

    kind: ClassVar[str] = "sync_mutated"
    mutations: tuple[tuple[str, tuple[str, ...], Mapping[str, Any] | None], ...]
    now: int
    seed: bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "mutations": [
                {"collection": c, "index": list(i), "value": None if v is None else dict(v)}
                for c, i, v in self.mutations
            ],
            "now": self.now,
            "seed": b64u_encode(self.seed),
        }


@dataclass(frozen=True)
class SyncFetchWanted:
    """Read the account's log: the `state_changed` frame (its `version`), the socket
    (re)connected or the page loaded (`version` None)."""

    kind: ClassVar[str] = "sync_fetch_wanted"
    version: int | None
    now: int
    seed: bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "version": self.version,
            "now": self.now,
            "seed": b64u_encode(self.seed),
        }


@dataclass(frozen=True)
class SyncKeyReceived:
    """An account sync key (content type 7) the device engine accepted from an own device."""

    kind: ClassVar[str] = "sync_key_received"
    sender_device: str
    body: Mapping[str, Any]
    now: int
    seed: bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "sender_device": self.sender_device,
            "body": dict(self.body),
            "now": self.now,
            "seed": b64u_encode(self.seed),
        }


@dataclass(frozen=True)
class SyncCheckpointReceived:
    """An own device's position in the log (content type 8, `{version, chain}`), accepted by
    the device engine from an own listed device (section 23.8)."""

    kind: ClassVar[str] = "sync_checkpoint_received"
    sender_device: str
    body: Mapping[str, Any]
    now: int
    seed: bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "sender_device": self.sender_device,
            "body": dict(self.body),
            "now": self.now,
            "seed": b64u_encode(self.seed),
        }


@dataclass(frozen=True)
class SyncKeyShareWanted:
    """A device was just linked (the approving device): send it the account's sync key,
    creating the first one when the account has none."""

    kind: ClassVar[str] = "sync_key_share_wanted"
    now: int
    seed: bytes

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "now": self.now, "seed": b64u_encode(self.seed)}


@dataclass(frozen=True)
class SyncRotateWanted:
    """Re-key the state now (an own device left), unless another device's rotation is in the
    log already (section 22.8)."""

    kind: ClassVar[str] = "sync_rotate_wanted"
    now: int
    seed: bytes

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "now": self.now, "seed": b64u_encode(self.seed)}


@dataclass(frozen=True)
class SyncDevicesListed:
    """The own account's list as this device just verified it (section 4.3), with the devices
    the server reports logged out (`suspended`): an own device that left holds the sync key,
    so the state is re-keyed (section 22.8)."""

    kind: ClassVar[str] = "sync_devices_listed"
    listed: tuple[str, ...]
    suspended: tuple[str, ...]
    now: int
    seed: bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "listed": list(self.listed),
            "suspended": list(self.suspended),
            "now": self.now,
            "seed": b64u_encode(self.seed),
        }


@dataclass(frozen=True)
class SyncDeviceUsed:
    """The person uses this device (a page loaded, a minute passed in use): its last use
    goes into the synced state, at most once per LAST_USE_EVERY_MS (section 22.8)."""

    kind: ClassVar[str] = "sync_device_used"
    now: int
    seed: bytes

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "now": self.now, "seed": b64u_encode(self.seed)}


@dataclass(frozen=True)
class SyncAnswered:
    """The server's answer to the sync machine's request (status 0: no answer)."""

    kind: ClassVar[str] = "sync_answered"
    request_id: str
    status: int
    body: Any
    now: int
    seed: bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "request_id": self.request_id,
            "status": self.status,
            "body": self.body,
            "now": self.now,
            "seed": b64u_encode(self.seed),
        }


SyncEvent = (
    SyncMutated
    | SyncFetchWanted
    | SyncKeyReceived
    | SyncCheckpointReceived
    | SyncKeyShareWanted
    | SyncRotateWanted
    | SyncDevicesListed
    | SyncDeviceUsed
    | SyncAnswered
)


@dataclass(frozen=True)
class DecryptFailed:
    """An envelope from a device of a verified list did not decrypt (section 24.2); `reason`
    is the error's code, for people. A replay is not a failure."""

    kind: ClassVar[str] = "decrypt_failed"
    sender: str
    sender_device: str
    envelope_id: str
    sent_at: int
    reason: str
    now: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "sender": self.sender,
            "sender_device": self.sender_device,
            "envelope_id": self.envelope_id,
            "sent_at": self.sent_at,
            "reason": self.reason,
            "now": self.now,
        }


@dataclass(frozen=True)
class RetryDue:
    """A timer, fired every few seconds while the socket is open (section 24.2)."""

    kind: ClassVar[str] = "retry_due"
    now: int

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "now": self.now}


@dataclass(frozen=True)
class RetryAgain:
    """The person asked again for a message that could not be decrypted."""

    kind: ClassVar[str] = "retry_again"
    sender_device: str
    envelope_id: str
    now: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "sender_device": self.sender_device,
            "envelope_id": self.envelope_id,
            "now": self.now,
        }


@dataclass(frozen=True)
class RetryRequested:
    """A retry request (content type 9) from `sender_device`, with the resend cache's entry
    for its envelope (section 24.3: `{envelope_id, recipient, sent_at, targets, resends}`),
    or None when the cache holds none."""

    kind: ClassVar[str] = "retry_requested"
    sender: str
    sender_device: str
    body: Mapping[str, Any]
    cached: Mapping[str, Any] | None
    now: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "sender": self.sender,
            "sender_device": self.sender_device,
            "body": dict(self.body),
            "cached": None if self.cached is None else dict(self.cached),
            "now": self.now,
        }


Event = (
    FrameReceived
    | HttpAnswered
    | ListWanted
    | SenderSeen
    | ContentReceived
    | ContentDecrypted
    | MessagesRead
    | SendWanted
    | DecryptFailed
    | RetryDue
    | RetryAgain
    | RetryRequested
)


def event_from_dict(data: Mapping[str, Any]) -> Event:
    """The event a scenario file spells out (the JSON form of `to_dict`)."""
    kind, now = data.get("type"), data["now"]
    if kind == FrameReceived.kind:
        return FrameReceived(data["frame"], now)
    if kind == HttpAnswered.kind:
        return HttpAnswered(data["request_id"], data["status"], data["body"], now)
    if kind == ListWanted.kind:
        return ListWanted(data["account_id"], now, bool(data.get("refresh")))
    if kind == SenderSeen.kind:
        return SenderSeen(data["sender"], data["sender_device"], now)
    if kind == ContentReceived.kind:
        return ContentReceived(
            data["sender"],
            data["sender_device"],
            data["content_type"],
            data["sender_list_version"],
            b64u_decode(data["sender_list_hash"], length=32, what="sender list hash"),
            now,
        )
    if kind == SendWanted.kind:
        return SendWanted(data["envelope_id"], data["recipient"], now)
    if kind == ContentDecrypted.kind:
        return ContentDecrypted(
            data["sender"],
            data["sender_device"],
            data["content_type"],
            data["message_id"],
            data["timestamp"],
            data["body"],
            now,
        )
    if kind == MessagesRead.kind:
        return MessagesRead(data["peer"], tuple(data["message_ids"]), now)
    if kind == DecryptFailed.kind:
        return DecryptFailed(
            data["sender"],
            data["sender_device"],
            data["envelope_id"],
            data["sent_at"],
            data["reason"],
            now,
        )
    if kind == RetryDue.kind:
        return RetryDue(now)
    if kind == RetryAgain.kind:
        return RetryAgain(data["sender_device"], data["envelope_id"], now)
    if kind == RetryRequested.kind:
        return RetryRequested(
            data["sender"], data["sender_device"], data["body"], data.get("cached"), now
        )
    raise MalformedMessage(f"engine event: unknown type {kind!r}")


def sync_event_from_dict(data: Mapping[str, Any]) -> SyncEvent:
    """The sync machine's event a scenario file spells out (the JSON form of `to_dict`)."""
    kind, now = data.get("type"), data["now"]
    seed = b64u_decode(data["seed"], length=32, what="sync seed")
    if kind == SyncMutated.kind:
        mutations = tuple(
            (m["collection"], tuple(m["index"]), m["value"]) for m in data["mutations"]
        )
        return SyncMutated(mutations, now, seed)
    if kind == SyncFetchWanted.kind:
        return SyncFetchWanted(data.get("version"), now, seed)
    if kind == SyncKeyReceived.kind:
        return SyncKeyReceived(data["sender_device"], data["body"], now, seed)
    if kind == SyncCheckpointReceived.kind:
        return SyncCheckpointReceived(data["sender_device"], data["body"], now, seed)
    if kind == SyncKeyShareWanted.kind:
        return SyncKeyShareWanted(now, seed)
    if kind == SyncRotateWanted.kind:
        return SyncRotateWanted(now, seed)
    if kind == SyncDevicesListed.kind:
        return SyncDevicesListed(tuple(data["listed"]), tuple(data["suspended"]), now, seed)
    if kind == SyncDeviceUsed.kind:
        return SyncDeviceUsed(now, seed)
    if kind == SyncAnswered.kind:
        return SyncAnswered(data["request_id"], data["status"], data["body"], now, seed)
    raise MalformedMessage(f"engine event: unknown type {kind!r}")


# ---------------------------------------------------------------- the group machine (25.8)


@dataclass(frozen=True)
class GroupFetchWanted:
    """A doorbell, a (re)connect or a head ahead: read the log after the chain's head."""

    kind: ClassVar[str] = "group_fetch_wanted"
    now: int

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "now": self.now}


@dataclass(frozen=True)
class GroupAnswered:
    """The server's answer to the group machine's fetch (status 0: no answer)."""

    kind: ClassVar[str] = "group_answered"
    request_id: str
    status: int
    body: Any
    lists: Lists
    now: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "request_id": self.request_id,
            "status": self.status,
            "body": self.body,
            "lists": lists_to_dict(self.lists),
            "now": self.now,
        }


@dataclass(frozen=True)
class GroupListsKnown:
    """The lists the machine asked for are verified: what waits for them resumes."""

    kind: ClassVar[str] = "group_lists_known"
    lists: Lists
    now: int
    seed: bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "lists": lists_to_dict(self.lists),
            "now": self.now,
            "seed": b64u_encode(self.seed),
        }


@dataclass(frozen=True)
class GroupKeyReceived:
    """A sender-key distribution (content type 11) the device engine accepted over the
    pairwise session with `sender_device`."""

    kind: ClassVar[str] = "group_key_received"
    sender: str
    sender_device: str
    body: Mapping[str, Any]
    lists: Lists
    now: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "sender": self.sender,
            "sender_device": self.sender_device,
            "body": dict(self.body),
            "lists": lists_to_dict(self.lists),
            "now": self.now,
        }


@dataclass(frozen=True)
class GroupReceiptReceived:
    """A receipt for group messages (25.10) the device engine accepted over the pairwise
    session with `sender_device`."""

    kind: ClassVar[str] = "group_receipt_received"
    sender: str
    sender_device: str
    body: Mapping[str, Any]
    lists: Lists
    now: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "sender": self.sender,
            "sender_device": self.sender_device,
            "body": dict(self.body),
            "lists": lists_to_dict(self.lists),
            "now": self.now,
        }


@dataclass(frozen=True)
class GroupMessagesRead:
    """The person saw these messages of `sender`'s in the group (25.10)."""

    kind: ClassVar[str] = "group_messages_read"
    sender: str
    message_ids: tuple[str, ...]
    read_receipts: bool
    now: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "sender": self.sender,
            "message_ids": list(self.message_ids),
            "read_receipts": self.read_receipts,
            "now": self.now,
        }


@dataclass(frozen=True)
class GroupMessageReceived:
    """A group message (section 25.5) delivered for this group."""

    kind: ClassVar[str] = "group_message_received"
    message: bytes
    lists: Lists
    now: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "message": b64u_encode(self.message),
            "lists": lists_to_dict(self.lists),
            "now": self.now,
        }


@dataclass(frozen=True)
class GroupSendWanted:
    """The person sends an encoded content (section 10) to the group."""

    kind: ClassVar[str] = "group_send_wanted"
    send_id: str
    plaintext: bytes
    lists: Lists
    now: int
    seed: bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "send_id": self.send_id,
            "plaintext": b64u_encode(self.plaintext),
            "lists": lists_to_dict(self.lists),
            "now": self.now,
            "seed": b64u_encode(self.seed),
        }


@dataclass(frozen=True)
class GroupChangeWanted:
    """The person changes the group (section 25.1's kinds: create, add, remove, leave,
    promote, demote, rename), as this device, whose identity public key is `identity_key`."""

    kind: ClassVar[str] = "group_change_wanted"
    change_id: str
    change: str
    accounts: tuple[str, ...]
    name: str
    identity_key: bytes
    lists: Lists
    now: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "change_id": self.change_id,
            "change": self.change,
            "accounts": list(self.accounts),
            "name": self.name,
            "identity_key": b64u_encode(self.identity_key),
            "lists": lists_to_dict(self.lists),
            "now": self.now,
        }


@dataclass(frozen=True)
class GroupSigned:
    """The adapter signed the entry bytes of `group_sign` with the device's identity key."""

    kind: ClassVar[str] = "group_signed"
    change_id: str
    signature: bytes
    lists: Lists
    now: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "change_id": self.change_id,
            "signature": b64u_encode(self.signature),
            "lists": lists_to_dict(self.lists),
            "now": self.now,
        }


@dataclass(frozen=True)
class GroupSendAnswered:
    """The server's answer to a `group_send`: `accepted {id}` or `error` with `ref`; after
    `mismatched_devices` the adapter passes the members' lists fetched and verified again."""

    kind: ClassVar[str] = "group_send_answered"
    frame: Mapping[str, Any]
    lists: Lists
    now: int
    seed: bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "frame": dict(self.frame),
            "lists": lists_to_dict(self.lists),
            "now": self.now,
            "seed": b64u_encode(self.seed),
        }


GroupEvent = (
    GroupFetchWanted
    | GroupAnswered
    | GroupListsKnown
    | GroupKeyReceived
    | GroupMessageReceived
    | GroupSendWanted
    | GroupChangeWanted
    | GroupSigned
    | GroupSendAnswered
    | GroupReceiptReceived
    | GroupMessagesRead
)


def group_event_from_dict(data: Mapping[str, Any]) -> GroupEvent:
    """The group machine's event a scenario file spells out (the JSON form of `to_dict`)."""
    kind, now = data.get("type"), data["now"]
    if kind == GroupFetchWanted.kind:
        return GroupFetchWanted(now)
    if kind == GroupMessagesRead.kind:
        ids = tuple(data["message_ids"])
        return GroupMessagesRead(data["sender"], ids, data["read_receipts"], now)
    lists = lists_from_dict(data["lists"])
    if kind == GroupAnswered.kind:
        return GroupAnswered(data["request_id"], data["status"], data["body"], lists, now)
    if kind == GroupKeyReceived.kind:
        return GroupKeyReceived(data["sender"], data["sender_device"], data["body"], lists, now)
    if kind == GroupReceiptReceived.kind:
        body = data["body"]
        return GroupReceiptReceived(data["sender"], data["sender_device"], body, lists, now)
    if kind == GroupMessageReceived.kind:
        return GroupMessageReceived(b64u_decode(data["message"], what="group message"), lists, now)
    if kind == GroupChangeWanted.kind:
        return GroupChangeWanted(
            data["change_id"],
            data["change"],
            tuple(data["accounts"]),
            data["name"],
            b64u_decode(data["identity_key"], length=32, what="identity key"),
            lists,
            now,
        )
    if kind == GroupSigned.kind:
        signature = b64u_decode(data["signature"], length=64, what="entry signature")
        return GroupSigned(data["change_id"], signature, lists, now)
    seed = b64u_decode(data["seed"], length=32, what="group seed")
    if kind == GroupListsKnown.kind:
        return GroupListsKnown(lists, now, seed)
    if kind == GroupSendAnswered.kind:
        return GroupSendAnswered(data["frame"], lists, now, seed)
    if kind == GroupSendWanted.kind:
        plaintext = b64u_decode(data["plaintext"], what="group plaintext")
        return GroupSendWanted(data["send_id"], plaintext, lists, now, seed)
    raise MalformedMessage(f"engine event: unknown type {kind!r}")
