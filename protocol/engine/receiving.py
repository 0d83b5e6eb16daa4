"""What a device does with each content it decrypted (docs/protocol.md section 22.6): store
it, answer it with a receipt, refuse it, or drop it as a duplicate; registered in
`engine.handle` for `ContentDecrypted` and `MessagesRead`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from protocol.content import KNOWN_TYPES, MAX_RECEIPT_IDS, ContentType, decode_content
from protocol.encoding import b64u_decode, b64u_encode
from protocol.engine.effects import (
    AcceptGroupKey,
    AcceptGroupReceipt,
    AcceptHistoryKey,
    AcceptRetryRequest,
    AcceptSyncCheckpoint,
    AcceptSyncKey,
    ApplyReceipt,
    ContentVerdict,
    DropBlocked,
    DropDuplicate,
    Effect,
    MarkRead,
    SendContent,
    StoreMessage,
)
from protocol.engine.events import ContentDecrypted, MessagesRead
from protocol.engine.retry import resend_received
from protocol.engine.state import DeviceState, is_blocked
from protocol.exceptions import ProtocolError

Result = tuple[DeviceState, list[Effect]]


def seen_key(sender_device: str, message_id: str) -> str:
    """The de-duplication key of a content (section 10.1)."""
    return f"{sender_device}/{message_id}"


RECEIVING = (ContentDecrypted, MessagesRead)


def receive(state: DeviceState, event: ContentDecrypted | MessagesRead) -> Result:
    if isinstance(event, MessagesRead):
        return messages_read(state, event)
    return content_decrypted(state, event)


def content_decrypted(state: DeviceState, event: ContentDecrypted) -> Result:
    """A content applied once per (sender device, message id); a content type this device
    does not know is kept as an unsupported message, never dropped (DESIGN section 8)."""
    key = seen_key(event.sender_device, event.message_id)
    if key in state.seen:
        return state, [DropDuplicate(event.sender, event.sender_device, event.message_id)]
    state = replace(state, seen=state.seen | {key})
    if is_blocked(state, event.sender):
        return state, [DropBlocked(event.sender, event.sender_device, event.message_id)]
    kind = event.content_type
    if kind in (ContentType.TEXT, ContentType.ATTACHMENT):
        return state, _text(state, event)
    if kind == ContentType.RECEIPT:
        if event.sender == state.account_id:
            return state, []  # an own device's receipt reaches the contact, not us
        if "group_id" in event.body:  # to its group's machine, which checks the member (25.10)
            return state, [AcceptGroupReceipt(event.sender, event.sender_device, event.body)]
        ids = tuple(event.body["message_ids"])
        return state, [ApplyReceipt(event.sender, event.body["kind"], ids)]
    if kind == ContentType.TYPING:
        return state, []
    if kind == ContentType.RETRY_REQUEST:  # from any device (section 24.2)
        return state, [AcceptRetryRequest(event.sender, event.sender_device, event.body)]
    if kind == ContentType.RESEND:
        return resend_received(state, event)
    if kind == ContentType.GROUP_SENDER_KEY:  # from any device: to its group's machine (25.8)
        return state, [AcceptGroupKey(event.sender, event.sender_device, event.body)]
    if kind not in KNOWN_TYPES:
        return state, [StoreMessage(_record(event, "unsupported", content_type=kind))]
    if not _from_own_device(state, event):
        return state, [_refuse(event, "own_devices_only")]
    if kind == ContentType.SENT_TRANSCRIPT:
        return state, _transcript(state, event)
    if kind == ContentType.HISTORY_BUNDLE_KEY:
        if state.history_from is None:
            return state, [_refuse(event, "no_history_expected")]
        if state.history_from != event.sender_device:
            return state, [_refuse(event, "not_approver")]
        state = replace(state, history_from=None)  # once
        return state, [AcceptHistoryKey(event.sender_device, event.body)]
    if kind == ContentType.ACCOUNT_SYNC_KEY:
        return state, [AcceptSyncKey(event.sender_device, event.body)]  # to the sync machine
    if kind == ContentType.ACCOUNT_SYNC_CHECKPOINT:
        return state, [AcceptSyncCheckpoint(event.sender_device, event.body)]
    return state, []  # a device-list notice: the stamp's fetch is ContentReceived's


def messages_read(state: DeviceState, event: MessagesRead) -> Result:
    """A read receipt only when the setting is on, and only to a contact not blocked (the own
    devices learn it by transcript)."""
    if not state.read_receipts or not event.message_ids or event.peer not in state.contacts:
        return state, []
    if is_blocked(state, event.peer):
        return state, []
    ids = list(event.message_ids)
    return state, [
        SendContent(
            event.peer,
            int(ContentType.RECEIPT),
            {"kind": "read", "message_ids": ids[i : i + MAX_RECEIPT_IDS]},
        )
        for i in range(0, len(ids), MAX_RECEIPT_IDS)
    ]


def _shown(content_type: int, body: Mapping[str, Any]) -> dict[str, Any]:
    """What a message record keeps of a text or a file (its pointer, section 26.2)."""
    if content_type == ContentType.ATTACHMENT:
        return {"kind": "attachment", "attachment": body}
    return {"kind": "text", "text": body["text"]}


def _text(state: DeviceState, event: ContentDecrypted) -> list[Effect]:
    """A text or a file from another account: kept, and answered with a delivery receipt."""
    if event.sender == state.account_id:
        return []  # own texts and files arrive as sent transcripts
    shown = _shown(event.content_type, event.body)
    effects: list[Effect] = [
        StoreMessage(_record(event, shown.pop("kind"), **shown, status="received"))
    ]
    if event.sender in state.contacts:  # receipts only to contacts (DESIGN section 7)
        receipt = {"kind": "delivered", "message_ids": [event.message_id]}
        effects.append(SendContent(event.sender, int(ContentType.RECEIPT), receipt))
    return effects


def _transcript(state: DeviceState, event: ContentDecrypted) -> list[Effect]:
    """Another own device's send: its text or file as an own outgoing message, its read
    receipt as the conversation read there."""
    peer = event.body["recipient"]
    try:
        inner = decode_content(b64u_decode(event.body["content"], what="sent transcript"))
    except ProtocolError:
        return [_refuse(event, "malformed_transcript")]
    if inner.type in (ContentType.TEXT, ContentType.ATTACHMENT):
        record = {
            "author": state.account_id,
            "author_device": event.sender_device,
            "conversation": peer,
            "id": b64u_encode(inner.message_id),
            "outgoing": True,
            "status": "sent",
            "timestamp": inner.timestamp,
            **_shown(inner.type, inner.body),
        }
        return [StoreMessage(record)]
    if inner.type is ContentType.RECEIPT and "group_id" in inner.body:
        return []  # what an own device read in a group is not told to the others (yet)
    if inner.type is ContentType.RECEIPT and inner.body["kind"] == "read":
        return [MarkRead(peer, tuple(inner.body["message_ids"]))]
    return []


def _record(event: ContentDecrypted, kind: str, **more: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "author": event.sender,
        "author_device": event.sender_device,
        "conversation": event.sender,
        "id": event.message_id,
        "outgoing": False,
        "timestamp": event.timestamp,
        **more,
    }


def _from_own_device(state: DeviceState, event: ContentDecrypted) -> bool:
    own = state.lists.get(state.account_id)
    return (
        event.sender == state.account_id
        and own is not None
        and own.device_list.entry(event.sender_device) is not None
    )


def _refuse(event: ContentDecrypted, reason: str) -> ContentVerdict:
    return ContentVerdict(event.sender, event.sender_device, "refuse", reason)
