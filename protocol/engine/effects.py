"""What the engine asks its adapter to do (docs/protocol.md section 22.2).

`to_dict` is the form scenario files compare; a `detail` (an error's text, for people)
is language-specific and left out of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from protocol.encoding import b64u_encode
from protocol.engine.state import ListRecord, RetryRecord
from protocol.engine.syncstate import SyncState


@dataclass(frozen=True)
class SendFrame:
    """A frame to send on the device socket."""

    kind: ClassVar[str] = "send_frame"
    frame: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "frame": dict(self.frame)}


@dataclass(frozen=True)
class HttpRequest:
    """A request to make; its answer comes back as `HttpAnswered(request_id, ...)`."""

    kind: ClassVar[str] = "http_request"
    request_id: str
    method: str
    path: str
    body: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "request_id": self.request_id,
            "method": self.method,
            "path": self.path,
            "body": self.body,
        }


@dataclass(frozen=True)
class StoreList:
    """A verified list to store for the account (replacing the record kept before)."""

    kind: ClassVar[str] = "store_list"
    account_id: str
    record: ListRecord

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "account_id": self.account_id, "record": self.record.to_dict()}


@dataclass(frozen=True)
class Notice:
    """Something to tell the person, about an account; `code` says what (section 22.3)."""

    kind: ClassVar[str] = "notice"
    account_id: str
    code: str
    data: Mapping[str, Any] = field(default_factory=dict)
    detail: str = field(default="", compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "account_id": self.account_id,
            "code": self.code,
            "data": dict(self.data),
        }


@dataclass(frozen=True)
class ContentVerdict:
    """What to do with one received content: `accept` (the adapter applies it) or
    `refuse` (it is dropped, with a notice); `reason` says why it was refused."""

    kind: ClassVar[str] = "content_verdict"
    sender: str
    sender_device: str
    verdict: str
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "sender": self.sender,
            "sender_device": self.sender_device,
            "verdict": self.verdict,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class StoreMessage:
    """A message record to store and show (section 22.6): `kind` text or unsupported."""

    kind: ClassVar[str] = "store_message"
    record: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "record": dict(self.record)}


@dataclass(frozen=True)
class ApplyReceipt:
    """A receipt `peer` sent for messages the own account wrote to them."""

    kind: ClassVar[str] = "apply_receipt"
    peer: str
    receipt: str  # delivered | read
    message_ids: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "peer": self.peer,
            "receipt": self.receipt,
            "message_ids": list(self.message_ids),
        }


@dataclass(frozen=True)
class MarkRead:
    """Another own device read these messages of the conversation with `peer`."""

    kind: ClassVar[str] = "mark_read"
    peer: str
    message_ids: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "peer": self.peer, "message_ids": list(self.message_ids)}


@dataclass(frozen=True)
class SendContent:
    """A content to encrypt and send to every device of `recipient` (and a transcript to
    the own devices, as every send does)."""

    kind: ClassVar[str] = "send_content"
    recipient: str
    content_type: int
    body: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "recipient": self.recipient,
            "content_type": self.content_type,
            "body": dict(self.body),
        }


@dataclass(frozen=True)
class AcceptHistoryKey:
    """The history bundle key from the approving device: fetch and open the bundle."""

    kind: ClassVar[str] = "accept_history_key"
    sender_device: str
    body: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "sender_device": self.sender_device, "body": dict(self.body)}


@dataclass(frozen=True)
class DropDuplicate:
    """A content applied before (same sender device, same message id): ack and drop it."""

    kind: ClassVar[str] = "drop_duplicate"
    sender: str
    sender_device: str
    message_id: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "sender": self.sender,
            "sender_device": self.sender_device,
            "message_id": self.message_id,
        }


@dataclass(frozen=True)
class DropBlocked:
    """A content from an account the person blocked: ack and drop it (nothing stored, shown
    or answered)."""

    kind: ClassVar[str] = "drop_blocked"
    sender: str
    sender_device: str
    message_id: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "sender": self.sender,
            "sender_device": self.sender_device,
            "message_id": self.message_id,
        }


@dataclass(frozen=True)
class SendPlan:
    """Who gets a send (section 9): the content for each of `devices`, a sent transcript for
    each of `transcripts` (the other own devices). The adapter encrypts for exactly these
    devices and sends one `send` frame; `attempt` counts the plans of this send."""

    kind: ClassVar[str] = "send_plan"
    envelope_id: str
    recipient: str
    devices: tuple[str, ...]
    transcripts: tuple[str, ...]
    attempt: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "envelope_id": self.envelope_id,
            "recipient": self.recipient,
            "devices": list(self.devices),
            "transcripts": list(self.transcripts),
            "attempt": self.attempt,
        }


@dataclass(frozen=True)
class AcceptGroupKey:
    """A sender-key distribution (content type 11): hand it to the machine of its group
    (`GroupKeyReceived`, docs/protocol.md 25.8), which decides whether the sender counts."""

    kind: ClassVar[str] = "accept_group_key"
    sender: str
    sender_device: str
    body: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "sender": self.sender,
            "sender_device": self.sender_device,
            "body": dict(self.body),
        }


@dataclass(frozen=True)
class AcceptGroupReceipt:
    """A receipt for group messages (content type 2 with `group_id`): hand it to the machine
    of its group (`GroupReceiptReceived`, docs/protocol.md 25.10), which checks the member."""

    kind: ClassVar[str] = "accept_group_receipt"
    sender: str
    sender_device: str
    body: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "sender": self.sender,
            "sender_device": self.sender_device,
            "body": dict(self.body),
        }


@dataclass(frozen=True)
class AcceptSyncKey:
    """An account sync key from an own listed device: hand it to the sync machine
    (`SyncKeyReceived`)."""

    kind: ClassVar[str] = "accept_sync_key"
    sender_device: str
    body: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "sender_device": self.sender_device, "body": dict(self.body)}


@dataclass(frozen=True)
class AcceptSyncCheckpoint:
    """An own listed device's position in the account's log (content type 8): hand it to the
    sync machine (`SyncCheckpointReceived`)."""

    kind: ClassVar[str] = "accept_sync_checkpoint"
    sender_device: str
    body: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "sender_device": self.sender_device, "body": dict(self.body)}


@dataclass(frozen=True)
class StoreSync:
    """The sync machine's state changed: store it (section 22.8). The compared form names
    the position, the keys and what waits, not every record."""

    kind: ClassVar[str] = "store_sync"
    state: SyncState

    def to_dict(self) -> dict[str, Any]:
        account = self.state.account
        return {
            "type": self.kind,
            "version": account.version,
            "chain": b64u_encode(account.chain),
            "hash": b64u_encode(account.hash),
            "key_ids": [b64u_encode(k.key_id) for k in self.state.keys],
            "pending": len(self.state.pending),
            "refused": None if self.state.refused is None else self.state.refused[0],
        }


@dataclass(frozen=True)
class SyncChanged:
    """What changed in the synced state, for the adapter's own stores and views: each
    `{collection, index, value}` (value None: removed), in canonical (collection, index) order."""

    kind: ClassVar[str] = "sync_changed"
    changes: tuple[Mapping[str, Any], ...]

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "changes": [dict(c) for c in self.changes]}


@dataclass(frozen=True)
class ShareSyncKey:
    """Send the account sync key (content type 7, `body`) to every other own device."""

    kind: ClassVar[str] = "share_sync_key"
    body: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "body": dict(self.body)}


@dataclass(frozen=True)
class ShareSyncCheckpoint:
    """Send this device's position (content type 8, `body` `{version, chain}`) to every
    other own device, as a key is sent."""

    kind: ClassVar[str] = "share_sync_checkpoint"
    body: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "body": dict(self.body)}


@dataclass(frozen=True)
class StoreRetry:
    """Store a retry record and show its line: waiting, or could not be decrypted (24.2)."""

    kind: ClassVar[str] = "store_retry"
    record: RetryRecord

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "record": self.record.to_dict()}


@dataclass(frozen=True)
class ForgetRetry:
    """The envelope's content came: delete its retry record and its line."""

    kind: ClassVar[str] = "forget_retry"
    sender_device: str
    envelope_id: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "sender_device": self.sender_device,
            "envelope_id": self.envelope_id,
        }


@dataclass(frozen=True)
class SendRetryRequest:
    """Ask `device` (of account `recipient`) to send the envelope again: a type-9 content
    with this device's current signed prekey, sent to that one device (24.1)."""

    kind: ClassVar[str] = "send_retry_request"
    recipient: str
    device: str
    envelope_id: str
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "recipient": self.recipient,
            "device": self.device,
            "envelope_id": self.envelope_id,
            "count": self.count,
        }


@dataclass(frozen=True)
class AcceptRetryRequest:
    """A retry request: look its envelope up in the resend cache and feed `RetryRequested`."""

    kind: ClassVar[str] = "accept_retry_request"
    sender: str
    sender_device: str
    body: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "sender": self.sender,
            "sender_device": self.sender_device,
            "body": dict(self.body),
        }


@dataclass(frozen=True)
class Resend:
    """Answer a retry request: `{envelope_id, content}` as a type-10 content to that one
    device, first starting a session from `signed_prekey` (and, version 2, `kem_prekey`,
    27.5) when `new_session` (24.1); `content` None says the message is no longer held."""

    kind: ClassVar[str] = "resend"
    recipient: str
    device: str
    envelope_id: str
    content: str | None
    new_session: bool
    signed_prekey: Mapping[str, Any] | None
    kem_prekey: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "recipient": self.recipient,
            "device": self.device,
            "envelope_id": self.envelope_id,
            "content": self.content,
            "new_session": self.new_session,
            "signed_prekey": None if self.signed_prekey is None else dict(self.signed_prekey),
            "kem_prekey": None if self.kem_prekey is None else dict(self.kem_prekey),
        }


@dataclass(frozen=True)
class StoreResendCount:
    """How often the cached envelope went again to `device`."""

    kind: ClassVar[str] = "store_resend_count"
    envelope_id: str
    device: str
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "envelope_id": self.envelope_id,
            "device": self.device,
            "count": self.count,
        }


@dataclass(frozen=True)
class AcceptResend:
    """A resend answering this device's ask: apply its inner content (b64u) as a content
    from that device (`ContentReceived`, `ContentDecrypted`)."""

    kind: ClassVar[str] = "accept_resend"
    sender: str
    sender_device: str
    envelope_id: str
    content: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "sender": self.sender,
            "sender_device": self.sender_device,
            "envelope_id": self.envelope_id,
            "content": self.content,
        }


# ---------------------------------------------------------------- the group machine (25.8)


@dataclass(frozen=True)
class GroupNotice:
    """Something to tell the person about the group; `code` says what (section 25.8)."""

    kind: ClassVar[str] = "group_notice"
    code: str
    data: Mapping[str, Any] = field(default_factory=dict)
    detail: str = field(default="", compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "code": self.code, "data": dict(self.data)}


@dataclass(frozen=True)
class GroupListsWanted:
    """Fetch and verify these accounts' lists, then feed `group_lists_known`."""

    kind: ClassVar[str] = "group_lists_wanted"
    accounts: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "accounts": list(self.accounts)}


@dataclass(frozen=True)
class GroupSign:
    """Sign these entry bytes (section 25.1) with the device's identity key and feed
    `group_signed`; the adapter signs nothing that does not start with the entry label."""

    kind: ClassVar[str] = "group_sign"
    change_id: str
    data: bytes

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "change_id": self.change_id, "data": b64u_encode(self.data)}


@dataclass(frozen=True)
class GroupContent:
    """A group message decrypted: an encoded content (section 10) to apply."""

    kind: ClassVar[str] = "group_content"
    sender: str
    sender_device: str
    plaintext: bytes
    head_seq: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "sender": self.sender,
            "sender_device": self.sender_device,
            "plaintext": b64u_encode(self.plaintext),
            "head_seq": self.head_seq,
        }


@dataclass(frozen=True)
class GroupReceipt:
    """A member's receipt for group messages the own account wrote (25.10)."""

    kind: ClassVar[str] = "group_receipt"
    sender: str
    receipt: str  # delivered | read
    message_ids: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "sender": self.sender,
            "receipt": self.receipt,
            "message_ids": list(self.message_ids),
        }


@dataclass(frozen=True)
class GroupSend:
    """A group message to send to `targets` ((account, device id) pairs), after each
    distribution (account, device id, type-11 body) went over its pairwise session."""

    kind: ClassVar[str] = "group_send"
    send_id: str
    message: bytes
    targets: tuple[tuple[str, str], ...]
    distributions: tuple[tuple[str, str, Mapping[str, Any]], ...]
    rotated: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "send_id": self.send_id,
            "message": b64u_encode(self.message),
            "targets": [{"account": a, "device_id": d} for a, d in self.targets],
            "distributions": [
                {"account": a, "device_id": d, "body": dict(b)} for a, d, b in self.distributions
            ],
            "rotated": self.rotated,
        }


Effect = (
    SendFrame
    | HttpRequest
    | StoreList
    | Notice
    | ContentVerdict
    | SendPlan
    | StoreMessage
    | ApplyReceipt
    | MarkRead
    | SendContent
    | AcceptHistoryKey
    | DropDuplicate
    | DropBlocked
    | AcceptSyncKey
    | AcceptSyncCheckpoint
    | AcceptGroupKey
    | AcceptGroupReceipt
    | StoreSync
    | SyncChanged
    | ShareSyncKey
    | ShareSyncCheckpoint
    | StoreRetry
    | ForgetRetry
    | SendRetryRequest
    | AcceptRetryRequest
    | Resend
    | StoreResendCount
    | AcceptResend
    | GroupNotice
    | GroupListsWanted
    | GroupSign
    | GroupContent
    | GroupSend
    | GroupReceipt
)
