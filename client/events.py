"""What receiving yields (docs/protocol.md section 10), and one line of it for a person."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from client.outgoing import OutgoingMessage
from protocol.attachments import AttachmentPointer
from protocol.engine import RetryRecord


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
class FileMessage:
    """A file (its pointer, docs/protocol.md 26.2) from another account's device, or, when
    `outgoing`, one this account sent from another of its devices to `peer`."""

    peer: str
    sender_device: str
    message_id: bytes
    timestamp: int
    pointer: AttachmentPointer
    outgoing: bool = False


@dataclass(frozen=True)
class UnsupportedMessage:
    """A content of a type this version does not know (a newer Parley's): kept, never
    dropped, so the person knows something arrived (section 10)."""

    sender: str
    sender_device: str
    message_id: bytes
    timestamp: int
    content_type: int


@dataclass(frozen=True)
class ReceiptReceived:
    sender: str
    sender_device: str
    kind: str
    message_ids: tuple[bytes, ...]


@dataclass(frozen=True)
class ReceiptOwed:
    """The engine's `send_content` of a receipt: the connection sends it (not shown)."""

    peer: str
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
class MessageWaiting:
    """An envelope from the sender's device did not decrypt; that device was asked to send
    it again (ask `count` of MAX_RETRIES, docs/protocol.md 24.2). `sent_at`: where the line
    stands in the conversation."""

    sender: str
    sender_device: str
    envelope_id: str
    sent_at: int
    count: int


@dataclass(frozen=True)
class MessageUndecryptable:
    """An envelope from the sender's device could not be decrypted after the bounded asks,
    or its sender no longer holds it (24.2); the person may ask again."""

    sender: str
    sender_device: str
    envelope_id: str
    sent_at: int


@dataclass(frozen=True)
class SendOwed:
    """A retry request or a resend, encrypted and cached: the connection sends it to its
    one device (a partial send, 24.4; not shown); or a group receipt (25.10), prepared."""

    outgoing: OutgoingMessage


@dataclass(frozen=True)
class ListWarning:
    """Freeze or fork of an account's list (section 10.1): the server may be withholding."""

    account_id: str
    message: str


@dataclass(frozen=True)
class ContactChanged:
    """Another own device added (`added`) or removed a contact: the account's synced state
    (docs/protocol.md section 22.8) changed."""

    username: str
    added: bool
    nickname: str = ""


@dataclass(frozen=True)
class ReadElsewhere:
    """Another own device read `count` messages of the conversation with `peer` (its read
    receipt's transcript, or the account's synced read position)."""

    peer: str
    count: int


@dataclass(frozen=True)
class SyncKeyOwed:
    """The sync machine's `share_sync_key`: the connection sends `body` (content type 7) to
    every other own device (not shown)."""

    body: dict[str, Any]


@dataclass(frozen=True)
class SyncCheckpointOwed:
    """The sync machine's `share_sync_checkpoint`: the connection sends `body` (content type
    8, this device's `{version, chain}`) to every other own device (not shown)."""

    body: dict[str, Any]


@dataclass(frozen=True)
class SyncWarning:
    """The account's synced state could not be read or written; `code` is the sync machine's
    notice (`sync_refused`: the server's log failed a check, the state was left as it was)."""

    code: str
    message: str


@dataclass(frozen=True)
class GroupText:
    """A text in a group, from a member's device (docs/protocol.md 25.5); `sender` may be
    this account (another own device, or this one's own send read back)."""

    group_id: str
    group_name: str
    sender: str
    sender_device: str
    message_id: bytes
    timestamp: int
    text: str


@dataclass(frozen=True)
class GroupFile:
    """A file in a group (its pointer, docs/protocol.md 26.2), from a member's device."""

    group_id: str
    group_name: str
    sender: str
    sender_device: str
    message_id: bytes
    timestamp: int
    pointer: AttachmentPointer


@dataclass(frozen=True)
class GroupEvent:
    """What the group machine told about a group (docs/protocol.md 25.8): a change of its
    log (`group_changed`), a refusal, a fork or a withheld entry; `data` as the machine said."""

    group_id: str
    group_name: str
    code: str
    data: dict[str, Any]


@dataclass(frozen=True)
class GroupReceiptReceived:
    """A member's receipt for own group texts, counted by the group machine (25.10)."""

    group_id: str
    group_name: str
    sender: str
    kind: str  # delivered | read
    message_ids: tuple[bytes, ...]


@dataclass(frozen=True)
class GroupSendOwed:
    """A group send the group machine planned (again, after mismatched_devices, or after
    the lists it waited for): the connection sends it."""

    outgoing: Any  # client.groups.OutgoingGroup


Event = (
    TextMessage
    | GroupText
    | GroupFile
    | GroupEvent
    | GroupSendOwed
    | GroupReceiptReceived
    | SentTranscript
    | FileMessage
    | UnsupportedMessage
    | ReceiptReceived
    | ReceiptOwed
    | DevicesChanged
    | Refused
    | Duplicate
    | MessageWaiting
    | MessageUndecryptable
    | SendOwed
    | ListWarning
    | ContactChanged
    | ReadElsewhere
    | SyncKeyOwed
    | SyncCheckpointOwed
    | SyncWarning
)

# what the connection sends to the other own devices instead of showing it
OWED_TO_OWN_DEVICES = (SyncKeyOwed, SyncCheckpointOwed)


def retry_event(record: RetryRecord) -> MessageWaiting | MessageUndecryptable:
    """The line a retry record stands for (docs/protocol.md 24.2)."""
    if record.state == "failed":
        return MessageUndecryptable(
            record.sender, record.sender_device, record.envelope_id, record.sent_at
        )
    return MessageWaiting(
        record.sender, record.sender_device, record.envelope_id, record.sent_at, 1
    )


def format_time(timestamp_ms: int) -> str:
    return time.strftime("%H:%M:%S", time.localtime(timestamp_ms / 1000))


def _plain(account_id: str) -> str:
    return account_id


def _no_name(_device_id: str) -> str | None:
    return None


_GROUP_CHANGES = {
    "create": "created the group",
    "add": "added {accounts}",
    "remove": "removed {accounts}",
    "leave": "left",
    "promote": "made {accounts} an admin",
    "demote": "made {accounts} no longer an admin",
    "rename": "renamed the group to {name!r}",
}
_GROUP_REFUSALS = {
    "group_refused": "the server's copy of the group's log failed a check ({error}); nothing of it was accepted",
    "group_forked": "the server showed members different versions of the group's log; nothing is sent to it",
    "group_withheld": "the server keeps back a change of the group (a message named change {wanted}); nothing is sent to it until it comes",
    "group_unavailable": "the group's log could not be read ({code})",
    "group_message_refused": "a message from {sender}'s device {sender_device} was refused ({error})",
    "group_key_refused": "a group key from {sender}'s device {sender_device} was refused ({error})",
    "group_send_refused": "your message was not sent ({reason})",
    "group_change_refused": "your change was not made ({reason})",
    "group_receipt_not_sent": "a receipt to {sender} was not sent ({error})",
}


def _group_line(event: GroupEvent, *, me: str, name: Callable[[str], str]) -> str | None:
    data = event.data
    if event.code == "group_changed":
        actor = data.get("actor")
        who = "You" if actor == me else name(str(actor))
        accounts = ", ".join("you" if a == me else name(a) for a in data.get("accounts") or [])
        change = _GROUP_CHANGES.get(str(data.get("kind")), "changed the group")
        return (
            f"{event.group_name}: {who} {change.format(accounts=accounts, name=data.get('name'))}"
        )
    refusal = _GROUP_REFUSALS.get(event.code)
    if refusal is None:  # group_written: the change is told as group_changed
        return None
    return f"{event.group_name}: {refusal.format_map(_Missing(data))}"


class _Missing(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"


def describe(
    event: Event,
    *,
    me: str,
    name: Callable[[str], str] = _plain,
    device: Callable[[str], str | None] = _no_name,
) -> str | None:
    """One line for a person; None for what is not worth showing. `name` is how an account
    is shown ("Bob Smith (bob)"), `device` an own device's name as the server has it."""
    if isinstance(event, TextMessage):
        return f"[{format_time(event.timestamp)}] {name(event.sender)}: {event.text}"
    if isinstance(event, GroupText):
        who = "you" if event.sender == me else name(event.sender)
        return f"[{format_time(event.timestamp)}] {event.group_name}: {who}: {event.text}"
    if isinstance(event, GroupFile):
        who = "you" if event.sender == me else name(event.sender)
        about = f"{event.pointer.name} ({file_size(event.pointer.size)})"
        return f"[{format_time(event.timestamp)}] {event.group_name}: {who}: a file, {about}"
    if isinstance(event, GroupEvent):
        return _group_line(event, me=me, name=name)
    if isinstance(event, GroupReceiptReceived):
        n = len(event.message_ids)
        what = "your message" if n == 1 else f"{n} of your messages"
        return f"{event.group_name}: {event.kind.capitalize()}: {what}, by {name(event.sender)}"
    if isinstance(event, SentTranscript):
        on = device(event.sender_device)
        you = f"you (on {on})" if on else "you"
        return f"[{format_time(event.timestamp)}] {you} → {name(event.recipient)}: {event.text}"
    if isinstance(event, FileMessage):
        about = f"{event.pointer.name} ({file_size(event.pointer.size)})"
        if event.outgoing:
            on = device(event.sender_device)
            you = f"you (on {on})" if on else "you"
            return f"[{format_time(event.timestamp)}] {you} → {name(event.peer)}: a file, {about}"
        return f"[{format_time(event.timestamp)}] {name(event.peer)}: a file, {about}"
    if isinstance(event, UnsupportedMessage):
        return (
            f"[{format_time(event.timestamp)}] {name(event.sender)} sent a message this version "
            f"of Parley cannot show (content type {event.content_type}); update Parley to see it"
        )
    if isinstance(event, ReceiptReceived):
        n = len(event.message_ids)
        what = "your message" if n == 1 else f"{n} of your messages"
        return (
            f"{event.kind.capitalize()}: {what} to {name(event.sender)} "
            f"(device {event.sender_device})"
        )
    if isinstance(event, DevicesChanged):
        return f"{name(event.account_id)}'s devices changed (list version {event.version})"
    if isinstance(event, Refused):
        return (
            f"Refused a message from {name(event.sender)} (device {event.sender_device}): "
            f"{event.reason}"
        )
    if isinstance(event, MessageWaiting):
        if event.count > 1:  # asked again: the line stands already
            return None
        return (
            f"[{format_time(event.sent_at)}] Waiting for this message from {name(event.sender)}. "
            "This may take a while."
        )
    if isinstance(event, MessageUndecryptable):
        return (
            f"[{format_time(event.sent_at)}] This message from {name(event.sender)} could not "
            f"be decrypted. Ask again: python -m client retry {event.sender}"
        )
    if isinstance(event, ListWarning):
        return f"Warning about {name(event.account_id)}: {event.message}"
    if isinstance(event, ContactChanged):
        what = "added" if event.added else "removed"
        return f"Contacts: {name(event.username)} was {what} on another of your devices"
    if isinstance(event, ReadElsewhere):
        what = "a message" if event.count == 1 else f"{event.count} messages"
        return f"Read on another of your devices: {what} from {name(event.peer)}"
    if isinstance(event, SyncWarning):
        return f"Account sync: {event.message}"
    return None


def file_size(size: int) -> str:
    """A size as people read it: 812 bytes, 4.2 KB, 12 MB."""
    if size < 1000:
        return f"{size} bytes"
    for unit, scale in (("KB", 1e3), ("MB", 1e6), ("GB", 1e9)):
        value = size / scale
        if value < 1000 or unit == "GB":
            return f"{value:.1f} {unit}" if value < 10 else f"{round(value)} {unit}"
    raise AssertionError("unreachable")
