"""Validation of WebSocket frames (JSON objects with a `type` and a version `v`, size-limited)
and of the HTTP inputs of the state log, of group membership logs and of attachments."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from protocol.attachments import blob_size
from protocol.encoding import b64u_decode
from protocol.exceptions import InvalidJson, ProtocolError
from protocol.frames import PROTOCOL_VERSION
from protocol.strictjson import parse_json
from web import validation as v
from web.errors import BadFrame
from web.validation import InvalidInput

MAX_FRAME_BYTES = 1024 * 1024
MAX_ID_LENGTH = 64


@dataclass(frozen=True)
class Frame:
    type: str
    body: dict[str, Any]


def parse_frame(text: str | None) -> Frame:
    """Decode one text frame; raise BadFrame saying what is wrong."""
    if text is None:
        raise BadFrame("Binary frames are not accepted; send JSON text.")
    try:
        body = parse_json(text, max_bytes=MAX_FRAME_BYTES)
    except InvalidJson as error:
        if error.reason == "too_large":
            raise BadFrame(
                f"Frame is too large: {error}.",
                code="frame_too_large",
            ) from None
        raise BadFrame(
            f"Frame is not acceptable JSON: {error}.", data={"reason": error.reason}
        ) from None
    if not isinstance(body, dict):
        raise BadFrame("Frame must be a JSON object.")
    kind = body.get("type")
    if not isinstance(kind, str) or not kind:
        raise BadFrame("Frame has no 'type'.")
    version = body.get("v")
    if type(version) is not int or version != PROTOCOL_VERSION:  # not 1.0, not true
        raise BadFrame(
            f"Unsupported frame version {body.get('v')!r}; expected {PROTOCOL_VERSION}.",
            code="bad_version",
        )
    return Frame(type=kind, body=body)


def optional_id(body: dict[str, Any], key: str = "id") -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_ID_LENGTH:
        raise BadFrame(f"'{key}' must be a string of at most {MAX_ID_LENGTH} characters.")
    return value


MAX_TARGETS = 9  # up to 5 devices of the recipient + the sender's 4 other devices
MAX_CIPHERTEXT_BYTES = 66 * 1024  # a 64 KiB content body, padded, plus ratchet/prekey overhead
MAX_ACKS = 1000
USERNAME_MAX = 32
DEVICE_ID_MAX = 32


@dataclass(frozen=True)
class SendRequest:
    envelope_id: str
    recipient: str
    targets: dict[str, bytes]
    partial: bool = False  # some of the devices only: a retry request or a resend (24.4)
    attachments: tuple[str, ...] = ()  # blob ids the targets are granted (19.5)


def _string(body: dict[str, Any], key: str, max_length: int) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not 1 <= len(value) <= max_length:
        raise BadFrame(
            f"'{key}' must be a string of 1 to {max_length} characters.", data={"field": key}
        )
    return value


def parse_send(body: dict[str, Any]) -> SendRequest:
    from protocol.encoding import b64u_decode
    from protocol.exceptions import ProtocolError

    envelope_id = _string(body, "id", MAX_ID_LENGTH)
    recipient = _string(body, "recipient", USERNAME_MAX)
    targets = body.get("targets")
    if not isinstance(targets, dict) or not 1 <= len(targets) <= MAX_TARGETS:
        raise BadFrame(
            f"'targets' must map 1 to {MAX_TARGETS} device ids to ciphertexts.",
            data={"field": "targets"},
        )
    decoded: dict[str, bytes] = {}
    for device_id, text in targets.items():
        if not 1 <= len(device_id) <= DEVICE_ID_MAX:
            raise BadFrame("'targets' has a device id that is too long.", data={"field": "targets"})
        if not isinstance(text, str) or len(text) > MAX_CIPHERTEXT_BYTES * 4 // 3 + 4:
            raise BadFrame(
                f"Ciphertext for {device_id!r} is larger than {MAX_CIPHERTEXT_BYTES} bytes.",
                code="too_large",
                data={"field": "targets"},
            )
        try:
            decoded[device_id] = b64u_decode(text, what=f"ciphertext for {device_id!r}")
        except ProtocolError as error:
            raise BadFrame(str(error), data={"field": "targets"}) from None
        if not decoded[device_id] or len(decoded[device_id]) > MAX_CIPHERTEXT_BYTES:
            raise BadFrame(
                f"Ciphertext for {device_id!r} must be 1 to {MAX_CIPHERTEXT_BYTES} bytes.",
                code="too_large",
                data={"field": "targets"},
            )
    partial = body.get("partial", False)
    if not isinstance(partial, bool):
        raise BadFrame("'partial' must be true or false.", data={"field": "partial"})
    return SendRequest(
        envelope_id=envelope_id,
        recipient=recipient,
        targets=decoded,
        partial=partial,
        attachments=_attachments(body),
    )


MAX_ATTACHMENTS = 16  # blob ids one send names


def _attachments(body: dict[str, Any]) -> tuple[str, ...]:
    """The optional `attachments` of a send: distinct blob ids (16 bytes in base64url)."""
    value = body.get("attachments", [])
    if not isinstance(value, list) or len(value) > MAX_ATTACHMENTS:
        raise BadFrame(
            f"'attachments' must list at most {MAX_ATTACHMENTS} blob ids.",
            data={"field": "attachments"},
        )
    for blob_id in value:
        try:
            b64u_decode(blob_id, length=16, what="blob id")
        except ProtocolError as error:
            raise BadFrame(str(error), data={"field": "attachments"}) from None
    if len(set(value)) != len(value):
        raise BadFrame("'attachments' names a blob twice.", data={"field": "attachments"})
    return tuple(value)


MAX_GROUP_TARGETS = 256 * 5  # every device of a group of 256 but the sender's


@dataclass(frozen=True)
class GroupSendRequest:
    """A group send (docs/protocol.md 25.9): the message once, its target devices and the
    pairwise distributions (device id -> ciphertext) that ride along."""

    envelope_id: str
    group_id: bytes
    message: bytes
    targets: tuple[str, ...]
    keys: dict[str, bytes]
    sender: str  # the message's own sender and device, checked against the socket's
    sender_device: str
    attachments: tuple[str, ...] = ()  # blob ids the targets are granted (19.5)


def _ciphertext(text: Any, field: str, what: str) -> bytes:
    if not isinstance(text, str) or len(text) > MAX_CIPHERTEXT_BYTES * 4 // 3 + 4:
        raise BadFrame(
            f"{what} is larger than {MAX_CIPHERTEXT_BYTES} bytes.",
            code="too_large",
            data={"field": field},
        )
    try:
        data = b64u_decode(text, what=what)
    except ProtocolError as error:
        raise BadFrame(str(error), data={"field": field}) from None
    if not data or len(data) > MAX_CIPHERTEXT_BYTES:
        raise BadFrame(
            f"{what} must be 1 to {MAX_CIPHERTEXT_BYTES} bytes.",
            code="too_large",
            data={"field": field},
        )
    return data


def _device_id(value: Any, field: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= DEVICE_ID_MAX:
        raise BadFrame(
            f"'{field}' has a device id that is not 1 to {DEVICE_ID_MAX} characters.",
            data={"field": field},
        )
    return value


def parse_group_send(body: dict[str, Any]) -> GroupSendRequest:
    from protocol.senderkeys import decode_group_message

    envelope_id = _string(body, "id", MAX_ID_LENGTH)
    try:
        group_id = b64u_decode(body.get("group_id"), length=16, what="group id")
    except ProtocolError as error:
        raise BadFrame(str(error), data={"field": "group_id"}) from None
    message = _ciphertext(body.get("message"), "message", "The group message")
    targets = body.get("targets")
    if not isinstance(targets, list) or not 1 <= len(targets) <= MAX_GROUP_TARGETS:
        raise BadFrame(
            f"'targets' must list 1 to {MAX_GROUP_TARGETS} device ids.", data={"field": "targets"}
        )
    devices = tuple(_device_id(t, "targets") for t in targets)
    if len(set(devices)) != len(devices):
        raise BadFrame("'targets' names a device twice.", data={"field": "targets"})
    keys = body.get("keys", {})
    if not isinstance(keys, dict) or len(keys) > MAX_GROUP_TARGETS:
        raise BadFrame("'keys' must map device ids to ciphertexts.", data={"field": "keys"})
    listed = set(devices)
    decoded = {}
    for device_id, text in keys.items():
        if device_id not in listed:
            raise BadFrame(
                f"'keys' names {device_id!r}, which is not among the targets.",
                data={"field": "keys"},
            )
        decoded[device_id] = _ciphertext(text, "keys", f"The distribution for {device_id!r}")
    try:
        header = decode_group_message(message)
    except ProtocolError as error:
        raise BadFrame(
            f"'message' is not a group message: {error}", data={"field": "message"}
        ) from None
    if header.group_id != group_id:
        raise BadFrame("'message' is a message of another group.", data={"field": "message"})
    return GroupSendRequest(
        envelope_id,
        group_id,
        message,
        devices,
        decoded,
        header.sender,
        header.device,
        _attachments(body),
    )


def parse_ack(body: dict[str, Any]) -> list[int]:
    seqs = body.get("seqs")
    if not isinstance(seqs, list) or not 1 <= len(seqs) <= MAX_ACKS:
        raise BadFrame(
            f"'seqs' must be a list of 1 to {MAX_ACKS} queue positions.", data={"field": "seqs"}
        )
    if not all(isinstance(s, int) and not isinstance(s, bool) and 0 < s < 2**63 for s in seqs):
        raise BadFrame("'seqs' must hold positive integers.", data={"field": "seqs"})
    return seqs


# ---------------------------------------------------------------- the state log over HTTP

STATE_PATCH_MAX_BYTES = 64 * 1024  # a decoded patch blob
STATE_SNAPSHOT_MAX_BYTES = 8 * 1024 * 1024  # a decoded snapshot blob
STATE_MAX_PATCHES = 1000  # patches after the latest snapshot; then one must be written
STATE_PAGE_ENTRIES = 500
STATE_PAGE_BYTES = 4 * 1024 * 1024  # of blobs in one page, unless its one entry is larger
# A POST body: the largest snapshot in base64url, and room for the other fields.
STATE_MAX_BODY_BYTES = -(-STATE_SNAPSHOT_MAX_BYTES * 4 // 3) + 1024
STATE_KIND_LIMITS = {"patch": STATE_PATCH_MAX_BYTES, "snapshot": STATE_SNAPSHOT_MAX_BYTES}
MAX_VERSION = 2**53 - 1


@dataclass(frozen=True)
class StateWrite:
    version: int
    kind: str
    blob: bytes


def parse_state_after(query: Mapping[str, str]) -> int:
    """`after` of `GET /api/state`: a decimal version, 0 when absent."""
    text = query.get("after", "0")
    if not (text.isascii() and text.isdigit()) or len(text) > 16 or int(text) > MAX_VERSION:
        raise InvalidInput(
            f"'after' must be a version from 0 to {MAX_VERSION}.", data={"field": "after"}
        )
    return int(text)


def parse_state_write(data: dict[str, Any]) -> StateWrite:
    """The body of `POST /api/state`. The blob is opaque: only its size is checked."""
    version = v.integer(data, "version", minimum=1, maximum=MAX_VERSION)
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in STATE_KIND_LIMITS:
        raise InvalidInput("'kind' must be 'patch' or 'snapshot'.", data={"field": "kind"})
    limit = STATE_KIND_LIMITS[kind]
    text = data.get("blob")
    if isinstance(text, str) and len(text) > -(-limit * 4 // 3):  # refused before decoding
        raise _blob_too_large(kind, limit)
    blob = v.binary(data, "blob", max_length=limit)
    if not blob:
        raise InvalidInput("'blob' must not be empty.", data={"field": "blob"})
    return StateWrite(version=version, kind=kind, blob=blob)


def _blob_too_large(kind: str, limit: int) -> InvalidInput:
    return InvalidInput(
        f"A {kind} blob is at most {limit} bytes.",
        code="too_large",
        status=413,
        data={"field": "blob", "limit": limit},
    )


# ---------------------------------------------------------------- group membership logs

GROUP_ENTRY_MAX_BYTES = 16 * 1024  # a decoded wire entry (the protocol allows 64 KiB)
GROUP_PAGE_ENTRIES = 500
GROUP_MAX_BODY_BYTES = -(-GROUP_ENTRY_MAX_BYTES * 4 // 3) + 1024


@dataclass(frozen=True)
class GroupWrite:
    seq: int
    entry: bytes


def parse_group_id(text: str) -> bytes:
    """The `<group_id>` of a group's URL: 16 bytes in base64url."""
    try:
        return b64u_decode(text, length=16, what="group id")
    except ProtocolError:
        raise InvalidInput(
            "The group id must be 16 bytes in base64url.", data={"field": "group_id"}
        ) from None


def parse_group_after(query: Mapping[str, str]) -> int:
    """`after` of `GET /api/groups/<id>/entries`: the seq the device holds, -1 (the default)
    for none."""
    text = query.get("after", "-1")
    digits = text[1:] if text.startswith("-") else text
    if (
        not (digits.isascii() and digits.isdigit())
        or len(text) > 16
        or not -1 <= int(text) <= MAX_VERSION
    ):
        raise InvalidInput(
            f"'after' must be a seq from -1 to {MAX_VERSION}.", data={"field": "after"}
        )
    return int(text)


def parse_group_write(data: dict[str, Any]) -> GroupWrite:
    """The body of `POST /api/groups/<id>/entries`; the entry itself is checked by the service."""
    seq = v.integer(data, "seq", minimum=0, maximum=MAX_VERSION)
    text = data.get("entry")
    if isinstance(text, str) and len(text) > -(-GROUP_ENTRY_MAX_BYTES * 4 // 3):
        raise _entry_too_large()
    entry = v.binary(data, "entry", max_length=GROUP_ENTRY_MAX_BYTES)
    return GroupWrite(seq=seq, entry=entry)


def _entry_too_large() -> InvalidInput:
    return InvalidInput(
        f"A group entry is at most {GROUP_ENTRY_MAX_BYTES} bytes.",
        code="too_large",
        status=413,
        data={"field": "entry", "limit": GROUP_ENTRY_MAX_BYTES},
    )


# ---------------------------------------------------------------- attachments


def parse_attachment_open(data: dict[str, Any]) -> int:
    """The body of `POST /api/attachments`: the blob's size in ciphertext bytes, at least
    that of an empty file (the largest is the service's to refuse, with its limit)."""
    return v.integer(data, "size", minimum=blob_size(0))


MAX_SHARED_BLOBS = 1000  # blob ids one grant request names (a history's files)


def parse_attachment_grants(data: dict[str, Any]) -> tuple[str, list[str]]:
    """The body of `POST /api/attachments/grants`: the own device to grant, and the blobs."""
    device_id = v.string(data, "device_id", max_length=MAX_ID_LENGTH)
    blob_ids = v.array(data, "blob_ids", max_items=MAX_SHARED_BLOBS)
    for blob_id in blob_ids:
        try:
            b64u_decode(blob_id, length=16, what="blob id")
        except ProtocolError as error:
            raise InvalidInput(str(error), data={"field": "blob_ids"}) from None
    return device_id, sorted(set(blob_ids))


def parse_range(header: str | None) -> int | None:
    """The first byte asked for by `Range: bytes=N-` (a resumed download), or None for the
    whole blob. Other ranges are ignored, as HTTP allows: the answer is the whole blob."""
    if header is None or not header.startswith("bytes=") or not header.endswith("-"):
        return None
    digits = header[len("bytes=") : -1]
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 16:
        return None
    return int(digits)
