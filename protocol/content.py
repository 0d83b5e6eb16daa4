"""Plaintext content inside a message (docs/protocol.md section 10)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from protocol.attachments import validate_pointer
from protocol.devicelist import DeviceList
from protocol.encoding import Reader, b64u_decode, is_uint, u8, u32, u64
from protocol.exceptions import MalformedDeviceList, MalformedMessage
from protocol.keys import PublicKemPrekey
from protocol.rng import Rng
from protocol.strictjson import canonical_json, parse_canonical_json

CONTENT_VERSION = 1
MAX_BODY_BYTES = 65536
CONTENT_PADDING = 64
MAX_RECEIPT_IDS = 100


class ContentType(IntEnum):
    TEXT = 1
    RECEIPT = 2
    SENT_TRANSCRIPT = 3
    DEVICE_LIST_NOTICE = 4
    HISTORY_BUNDLE_KEY = 5
    TYPING = 6
    ACCOUNT_SYNC_KEY = 7
    ACCOUNT_SYNC_CHECKPOINT = 8
    RETRY_REQUEST = 9
    RESEND = 10
    GROUP_SENDER_KEY = 11
    ATTACHMENT = 12


KNOWN_TYPES = frozenset(int(t) for t in ContentType)


@dataclass(frozen=True)
class Content:
    type: ContentType | int  # an int only for a type this version does not know (section 10)
    message_id: bytes
    timestamp: int
    sender_list_version: int
    sender_list_hash: bytes
    body: dict[str, Any]


def new_content(
    content_type: ContentType,
    body: dict[str, Any],
    *,
    timestamp: int,
    sender_list_version: int,
    sender_list_hash: bytes,
    rng: Rng,
) -> Content:
    """A content with a fresh random message id (rng(16)); validates the body."""
    content = Content(
        type=content_type_of(content_type),
        message_id=rng(16),
        timestamp=timestamp,
        sender_list_version=sender_list_version,
        sender_list_hash=sender_list_hash,
        body=body,
    )
    encode_content(content)
    return content


def _expect_keys(body: Any, keys: set[str], what: str) -> None:
    if not isinstance(body, dict) or set(body) != keys:
        got = sorted(body) if isinstance(body, dict) else type(body).__name__
        raise MalformedMessage(f"{what} body: expected keys {sorted(keys)}, got {got}")


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise MalformedMessage(message)


def content_type_of(value: Any) -> ContentType:
    """The ContentType of `value` (a ContentType or a plain int 1..12); else MalformedMessage."""
    if not is_uint(value, 0xFF):
        raise MalformedMessage(f"content: expected type 1 to 12, got {value!r}")
    try:
        return ContentType(value)
    except ValueError as exc:
        raise MalformedMessage(f"content: expected type 1 to 12, got {value!r}") from exc


def validate_body(content_type: ContentType | int, body: Any) -> None:
    """Check the body has exactly the keys and value types of its type (section 10 table).

    `content_type` may be a ContentType or a plain int; any other value is MalformedMessage.
    """
    content_type = content_type_of(content_type)
    if content_type is ContentType.TEXT:
        _expect_keys(body, {"text"}, "text")
        _expect(isinstance(body["text"], str), "text body: expected a string text")
    elif content_type is ContentType.RECEIPT:
        # a receipt for group messages names its group (docs/protocol.md 25.10)
        grouped = isinstance(body, dict) and "group_id" in body
        keys = {"kind", "message_ids", "group_id"} if grouped else {"kind", "message_ids"}
        _expect_keys(body, keys, "receipt")
        if grouped:
            b64u_decode(body["group_id"], length=16, what="receipt group id")
        _expect(
            body["kind"] in ("delivered", "read"), "receipt body: expected kind delivered or read"
        )
        ids = body["message_ids"]
        _expect(
            isinstance(ids, list) and 1 <= len(ids) <= MAX_RECEIPT_IDS,
            f"receipt body: expected 1 to {MAX_RECEIPT_IDS} message ids",
        )
        for item in ids:
            b64u_decode(item, length=16, what="receipt message id")
    elif content_type is ContentType.SENT_TRANSCRIPT:
        _expect_keys(body, {"recipient", "content"}, "sent transcript")
        _expect(
            isinstance(body["recipient"], str), "sent transcript body: expected a string recipient"
        )
        inner = decode_content(b64u_decode(body["content"], what="sent transcript content"))
        _expect(
            inner.type in _TRANSCRIBED,
            f"sent transcript body: expected inner content of type 1, 2 or 12, got {int(inner.type)}",
        )
    elif content_type is ContentType.DEVICE_LIST_NOTICE:
        _expect_keys(body, {"device_list"}, "device-list notice")
        try:
            DeviceList.from_dict(body["device_list"])
        except MalformedDeviceList as exc:
            raise MalformedMessage(f"device-list notice body: {exc}") from exc
    elif content_type is ContentType.HISTORY_BUNDLE_KEY:
        _expect_keys(body, {"blob_id", "key", "hash", "length", "count"}, "history bundle key")
        _expect(
            isinstance(body["blob_id"], str), "history bundle key body: expected a string blob_id"
        )
        b64u_decode(body["key"], length=32, what="history key")
        b64u_decode(body["hash"], length=32, what="history hash")
        _expect(is_uint(body["length"]), "history bundle key body: expected an integer length")
        _expect(is_uint(body["count"]), "history bundle key body: expected an integer count")
    elif content_type is ContentType.TYPING:
        _expect_keys(body, {"state"}, "typing")
        _expect(body["state"] in ("started", "stopped"), "typing body: expected started or stopped")
    elif content_type is ContentType.ACCOUNT_SYNC_KEY:
        _expect_keys(body, {"key_id", "key", "since_version", "version", "chain"}, "sync key")
        b64u_decode(body["key_id"], length=16, what="sync key id")
        b64u_decode(body["key"], length=32, what="sync key")
        _expect(
            is_uint(body["since_version"]) and body["since_version"] >= 1,
            "sync key body: expected an integer since_version of at least 1",
        )
        _checkpoint_fields(body, "sync key")
    elif content_type is ContentType.ACCOUNT_SYNC_CHECKPOINT:
        _expect_keys(body, {"version", "chain"}, "sync checkpoint")
        _checkpoint_fields(body, "sync checkpoint")
    elif content_type is ContentType.RETRY_REQUEST:
        keys = {"envelope_id", "count", "signed_prekey"}
        if isinstance(body, dict) and "kem_prekey" in body:  # version 2 (27.5)
            keys.add("kem_prekey")
            PublicKemPrekey.from_dict(body["kem_prekey"])
        _expect_keys(body, keys, "retry request")
        _envelope_id(body, "retry request")
        _expect(
            is_uint(body["count"]) and 1 <= body["count"] <= _MAX_RETRY_COUNT,
            f"retry request body: expected a count from 1 to {_MAX_RETRY_COUNT}",
        )
        prekey = body["signed_prekey"]
        _expect_keys(prekey, {"id", "public_key", "signature"}, "retry request signed_prekey")
        _expect(
            is_uint(prekey["id"], 0xFFFFFFFF),
            "retry request body: expected a signed prekey id from 0 to 2^32 - 1",
        )
        b64u_decode(prekey["public_key"], length=32, what="retry request signed prekey")
        b64u_decode(prekey["signature"], length=64, what="retry request signed prekey signature")
    elif content_type is ContentType.RESEND:
        _expect_keys(body, {"envelope_id", "content"}, "resend")
        _envelope_id(body, "resend")
        if body["content"] is not None:
            b64u_decode(body["content"], what="resend content")
    elif content_type is ContentType.GROUP_SENDER_KEY:
        _group_sender_key(body)
    elif content_type is ContentType.ATTACHMENT:
        validate_pointer(body)  # docs/protocol.md 26.2
    else:  # unreachable while every ContentType has a branch; refuse rather than skip
        raise MalformedMessage(f"content: no body rule for type {int(content_type)}")


# what a sent transcript may carry: a text, a receipt, a file
_TRANSCRIBED = (ContentType.TEXT, ContentType.RECEIPT, ContentType.ATTACHMENT)
_MAX_RETRY_COUNT = 5  # the engine's MAX_RETRIES (docs/protocol.md 24.6)
_MAX_ENVELOPE_ID = 64  # the server's limit on a client envelope id (section 20)


def _envelope_id(body: dict[str, Any], what: str) -> None:
    value = body["envelope_id"]
    _expect(
        isinstance(value, str) and 1 <= len(value) <= _MAX_ENVELOPE_ID,
        f"{what} body: expected an envelope_id of 1 to {_MAX_ENVELOPE_ID} characters",
    )


_GROUP_SENDER_KEY_FIELDS = {
    "group_id": 16,
    "key_id": 16,
    "chain_key": 32,
    "signing_key": 32,
    "head_hash": 32,
}


def _group_sender_key(body: Any) -> None:
    _expect_keys(body, {*_GROUP_SENDER_KEY_FIELDS, "iteration", "head_seq"}, "group sender key")
    for name, size in _GROUP_SENDER_KEY_FIELDS.items():
        b64u_decode(body[name], length=size, what=f"group sender key {name}")
    _expect(
        is_uint(body["iteration"], 0xFFFFFFFF),
        "group sender key body: expected an iteration from 0 to 2^32 - 1",
    )
    _expect(is_uint(body["head_seq"]), "group sender key body: expected an integer head_seq")


def _checkpoint_fields(body: dict[str, Any], what: str) -> None:
    _expect(is_uint(body["version"]), f"{what} body: expected an integer version")
    b64u_decode(body["chain"], length=32, what=f"{what} chain")


def _is_bytes(value: Any, length: int) -> bool:
    return isinstance(value, bytes) and len(value) == length


def encode_content(content: Content) -> bytes:
    """Section 10 layout; refuses (MalformedMessage) an unknown type, a body that does not
    match its type, wrong sizes, and a timestamp or list version outside 0..2^53-1."""
    content_type = content_type_of(content.type)
    validate_body(content_type, content.body)
    _expect(_is_bytes(content.message_id, 16), "content: expected a 16-byte message id")
    _expect(_is_bytes(content.sender_list_hash, 32), "content: expected a 32-byte list hash")
    body = canonical_json(content.body)
    _expect(len(body) <= MAX_BODY_BYTES, f"content body: expected at most {MAX_BODY_BYTES} bytes")
    out = (
        u8(CONTENT_VERSION)
        + u8(content_type)
        + content.message_id
        + u64(content.timestamp)
        + u64(content.sender_list_version)
        + content.sender_list_hash
        + u32(len(body))
        + body
    )
    return out + bytes(-len(out) % CONTENT_PADDING)


def decode_content(data: bytes) -> Content:
    """Parse and validate; raises MalformedMessage for anything outside section 10. A type
    this version does not know decodes with `type` a plain int and its body unchecked (any
    canonical JSON object), so the device can keep it as an unsupported message."""
    _expect(
        len(data) % CONTENT_PADDING == 0,
        f"content: expected a length multiple of {CONTENT_PADDING}, got {len(data)}",
    )
    reader = Reader(data, what="content")
    version = reader.uint(1)
    _expect(version == CONTENT_VERSION, f"content: expected version 1, got {version}")
    type_byte = reader.uint(1)
    _expect(type_byte >= 1, "content: expected a type from 1 to 255, got 0")
    message_id = reader.take(16)
    timestamp = reader.uint(8)
    list_version = reader.uint(8)
    list_hash = reader.take(32)
    length = reader.uint(4)
    _expect(length <= MAX_BODY_BYTES, f"content body: expected at most {MAX_BODY_BYTES} bytes")
    body = parse_canonical_json(reader.take(length))
    padding = reader.rest()
    _expect(
        len(padding) < CONTENT_PADDING and padding == bytes(len(padding)),
        "content: expected minimal zero padding",
    )
    content_type: ContentType | int = type_byte
    if type_byte in KNOWN_TYPES:
        content_type = ContentType(type_byte)
        validate_body(content_type, body)
    else:  # a newer version's type: kept as "unsupported", never dropped (section 10)
        _expect(isinstance(body, dict), "content body: expected a JSON object")
    return Content(
        type=content_type,
        message_id=message_id,
        timestamp=timestamp,
        sender_list_version=list_version,
        sender_list_hash=list_hash,
        body=body,
    )
