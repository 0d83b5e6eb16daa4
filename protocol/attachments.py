"""Attachments: a file sealed under a key of its own, uploaded once, pointed at from messages
(docs/protocol.md section 26).

The sealer and the opener take the file in pieces of any size and keep at most one 64 KiB
chunk, so memory stays flat whatever the file's size. The opener's plaintext is only good
once `finish()` returned: before that a truncated, swapped or altered blob may still be
found out, and whoever keeps the file must throw away what it was given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from protocol import primitives
from protocol.encoding import b64u_decode, b64u_encode, is_uint
from protocol.exceptions import AttachmentMismatch, DecryptionFailed, MalformedMessage
from protocol.rng import Rng

ATTACHMENT_CHUNK = 65536
ATTACHMENT_HASH_LABEL = "Parley v1 attachment"
ATTACHMENT_PLAINTEXT_LABEL = "Parley v1 attachment plaintext"
MAX_SIZE = 2**53 - 1
MAX_TYPE_LENGTH = 127
MAX_NAME_LENGTH = 255
MAX_THUMBNAIL_BYTES = 16384
MAX_THUMBNAIL_SIDE = 1024
MAX_PICTURE_SIDE = 65535
THUMBNAIL_TYPES = ("image/jpeg", "image/png", "image/webp")
_MIME = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")
_NAME_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f/\\]")


def file_name(name: str) -> str:
    """The name a pointer carries for a file the sender calls `name` (26.2): path separators
    and control characters become "_", cut to 255 code points; "file" when nothing is left."""
    safe = _NAME_FORBIDDEN.sub("_", name)[:MAX_NAME_LENGTH]
    return "file" if safe in ("", ".", "..") else safe


def media_type(kind: str) -> str:
    """`kind` in lower case when a pointer takes it (26.2), else application/octet-stream."""
    lower = kind.lower()
    ok = len(lower) <= MAX_TYPE_LENGTH and _MIME.fullmatch(lower) is not None
    return lower if ok else "application/octet-stream"


def chunk_count(size: int) -> int:
    """The file's 64 KiB chunks: an empty file is one empty chunk."""
    return max(1, -(-size // ATTACHMENT_CHUNK))


def blob_size(size: int) -> int:
    """The ciphertext's length for a file of `size` bytes: the header, then each chunk with
    its 17 bytes of tag and MAC."""
    return primitives.STREAM_HEADER_BYTES + size + primitives.STREAM_ABYTES * chunk_count(size)


def _chunk_length(size: int, index: int) -> int:
    last = chunk_count(size) - 1
    return ATTACHMENT_CHUNK if index < last else size - ATTACHMENT_CHUNK * last


@dataclass(frozen=True)
class Thumbnail:
    """A small picture of an image, made by the sender, inside the message itself."""

    type: str
    data: bytes
    width: int
    height: int


@dataclass(frozen=True)
class AttachmentPointer:
    """What a message says about a file (the body of content type 12, section 26.2)."""

    blob_id: str
    key: bytes
    digest: bytes
    plaintext_hash: bytes
    size: int
    type: str
    name: str
    thumbnail: Thumbnail | None = None
    width: int | None = None
    height: int | None = None

    @property
    def blob_size(self) -> int:
        return blob_size(self.size)

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "blob_id": self.blob_id,
            "key": b64u_encode(self.key),
            "digest": b64u_encode(self.digest),
            "plaintext_hash": b64u_encode(self.plaintext_hash),
            "size": self.size,
            "type": self.type,
            "name": self.name,
        }
        if self.thumbnail is not None:
            body["thumbnail"] = {
                "type": self.thumbnail.type,
                "data": b64u_encode(self.thumbnail.data),
                "width": self.thumbnail.width,
                "height": self.thumbnail.height,
            }
        if self.width is not None:
            body["width"] = self.width
            body["height"] = self.height
        validate_pointer(body)
        return body

    @classmethod
    def from_body(cls, body: Any) -> AttachmentPointer:
        validate_pointer(body)
        thumb = body.get("thumbnail")
        return cls(
            blob_id=body["blob_id"],
            key=b64u_decode(body["key"], length=32, what="attachment key"),
            digest=b64u_decode(body["digest"], length=32, what="attachment digest"),
            plaintext_hash=b64u_decode(body["plaintext_hash"], length=32, what="plaintext hash"),
            size=body["size"],
            type=body["type"],
            name=body["name"],
            thumbnail=None
            if thumb is None
            else Thumbnail(
                type=thumb["type"],
                data=b64u_decode(thumb["data"], what="thumbnail"),
                width=thumb["width"],
                height=thumb["height"],
            ),
            width=body.get("width"),
            height=body.get("height"),
        )


_REQUIRED = {"blob_id", "key", "digest", "plaintext_hash", "size", "type", "name"}
_OPTIONAL = {"thumbnail", "width", "height"}


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise MalformedMessage(f"attachment body: {message}")


def _side(value: Any, most: int) -> bool:
    return is_uint(value, most) and value >= 1


def validate_pointer(body: Any) -> None:
    """Exactly the keys and value types of section 26.2; else MalformedMessage."""
    _expect(isinstance(body, dict), "expected an object")
    keys = set(body)
    _expect(
        keys >= _REQUIRED and keys <= _REQUIRED | _OPTIONAL,
        f"expected keys {sorted(_REQUIRED)} and optionally {sorted(_OPTIONAL)}, got {sorted(keys)}",
    )
    _expect(isinstance(body["blob_id"], str), "expected a string blob_id")
    b64u_decode(body["blob_id"], length=16, what="attachment blob id")
    for field in ("key", "digest", "plaintext_hash"):
        b64u_decode(body[field], length=32, what=f"attachment {field}")
    _expect(is_uint(body["size"], MAX_SIZE), "expected a size from 0 to 2^53 - 1")
    kind = body["type"]
    _expect(
        isinstance(kind, str)
        and len(kind) <= MAX_TYPE_LENGTH
        and _MIME.fullmatch(kind) is not None,
        f"expected a lowercase media type such as image/jpeg of at most {MAX_TYPE_LENGTH} characters",
    )
    name = body["name"]
    _expect(
        isinstance(name, str)
        and 1 <= len(name) <= MAX_NAME_LENGTH
        and _NAME_FORBIDDEN.search(name) is None
        and name not in (".", ".."),
        f"expected a file name of 1 to {MAX_NAME_LENGTH} characters without / \\ or control characters",
    )
    if "thumbnail" in keys:
        thumb = body["thumbnail"]
        _expect(
            isinstance(thumb, dict) and set(thumb) == {"type", "data", "width", "height"},
            "expected a thumbnail {type, data, width, height}",
        )
        _expect(thumb["type"] in THUMBNAIL_TYPES, f"expected a thumbnail type of {THUMBNAIL_TYPES}")
        _expect(isinstance(thumb["data"], str), "expected thumbnail data in base64url")
        data = b64u_decode(thumb["data"], what="thumbnail")
        _expect(
            1 <= len(data) <= MAX_THUMBNAIL_BYTES,
            f"expected a thumbnail of 1 to {MAX_THUMBNAIL_BYTES} bytes",
        )
        _expect(
            _side(thumb["width"], MAX_THUMBNAIL_SIDE)
            and _side(thumb["height"], MAX_THUMBNAIL_SIDE),
            f"expected thumbnail sides from 1 to {MAX_THUMBNAIL_SIDE}",
        )
    _expect(("width" in keys) == ("height" in keys), "expected both width and height, or neither")
    if "width" in keys:
        _expect(
            _side(body["width"], MAX_PICTURE_SIDE) and _side(body["height"], MAX_PICTURE_SIDE),
            f"expected width and height from 1 to {MAX_PICTURE_SIDE}",
        )


@dataclass(frozen=True)
class SealedFile:
    """What the sealer found once the whole file went through it."""

    key: bytes
    digest: bytes
    plaintext_hash: bytes
    size: int


class AttachmentSealer:
    """Seals a file of `size` bytes given in pieces of any size (section 26.1). Draws rng(32)
    for the key, then rng(24) for the stream header; the header is the first output."""

    def __init__(self, size: int, rng: Rng) -> None:
        if not is_uint(size, MAX_SIZE):
            raise MalformedMessage(f"attachment: expected a size from 0 to 2^53 - 1, got {size!r}")
        self.size = size
        self.key = rng(32)
        self.header = rng(primitives.STREAM_HEADER_BYTES)
        self._state = primitives.stream_state(self.key, self.header)
        self._digest = primitives.Hash32(ATTACHMENT_HASH_LABEL)
        self._digest.update(self.header)
        self._plain = primitives.Hash32(ATTACHMENT_PLAINTEXT_LABEL)
        self._buffer = bytearray()
        self._taken = 0
        self._chunks = 0
        self._count = chunk_count(size)

    @classmethod
    def keyed(cls, size: int, key: bytes, header: bytes) -> AttachmentSealer:
        """The sealer of an upload resumed: with the key and header drawn the first time, the
        same file gives the same blob again, so the pieces the server holds can be skipped."""
        draws = iter((key, header))
        return cls(size, lambda _n: next(draws))

    def push(self, piece: bytes) -> bytes:
        """The ciphertext of every chunk that `piece` completes (maybe none; an empty file's
        one chunk comes from its first push, of b"")."""
        if self._taken + len(piece) > self.size:
            raise MalformedMessage(f"attachment: more than the {self.size} bytes announced")
        self._taken += len(piece)
        self._plain.update(piece)
        self._buffer += piece
        out = []
        while self._chunks < self._count:
            length = _chunk_length(self.size, self._chunks)
            if len(self._buffer) < length:
                break
            chunk = bytes(self._buffer[:length])
            del self._buffer[:length]
            self._chunks += 1
            last = self._chunks == self._count
            tag = primitives.TAG_FINAL if last else primitives.TAG_MESSAGE
            sealed = primitives.stream_push(self._state, chunk, tag)
            self._digest.update(sealed)
            out.append(sealed)
        return b"".join(out)

    def finish(self) -> SealedFile:
        if self._chunks != self._count:
            raise MalformedMessage(
                f"attachment: {self._taken} of the {self.size} bytes announced were sealed"
            )
        return SealedFile(self.key, self._digest.digest(), self._plain.digest(), self.size)


class AttachmentOpener:
    """Opens the blob a pointer names, given in pieces of any size (section 26.3)."""

    def __init__(self, pointer: AttachmentPointer) -> None:
        self.pointer = pointer
        self._state: Any = None
        self._digest = primitives.Hash32(ATTACHMENT_HASH_LABEL)
        self._plain = primitives.Hash32(ATTACHMENT_PLAINTEXT_LABEL)
        self._buffer = bytearray()
        self._received = 0
        self._chunks = 0
        self._count = chunk_count(pointer.size)

    def pull(self, piece: bytes) -> bytes:
        """The plaintext of every chunk that `piece` completes (good only after finish())."""
        self._received += len(piece)
        if self._received > self.pointer.blob_size:
            raise AttachmentMismatch(
                f"attachment: more than the {self.pointer.blob_size} bytes of the file"
            )
        self._digest.update(piece)
        self._buffer += piece
        if self._state is None:
            if len(self._buffer) < primitives.STREAM_HEADER_BYTES:
                return b""
            header = bytes(self._buffer[: primitives.STREAM_HEADER_BYTES])
            del self._buffer[: primitives.STREAM_HEADER_BYTES]
            self._state = primitives.stream_state(self.pointer.key, header)
        out = []
        while self._chunks < self._count:
            length = _chunk_length(self.pointer.size, self._chunks) + primitives.STREAM_ABYTES
            if len(self._buffer) < length:
                break
            chunk = bytes(self._buffer[:length])
            del self._buffer[:length]
            plaintext, tag = primitives.stream_pull(self._state, chunk)
            self._chunks += 1
            last = self._chunks == self._count
            expected = primitives.TAG_FINAL if last else primitives.TAG_MESSAGE
            if tag != expected:
                raise DecryptionFailed(
                    f"attachment chunk {self._chunks - 1}: expected tag {expected}, got {tag}"
                )
            self._plain.update(plaintext)
            out.append(plaintext)
        return b"".join(out)

    def finish(self) -> None:
        """Refuses a blob cut short, or one whose digest or plaintext differs from the pointer's."""
        if self._received != self.pointer.blob_size or self._chunks != self._count:
            raise AttachmentMismatch(
                f"attachment: expected {self.pointer.blob_size} bytes, got {self._received}"
            )
        if not primitives.mac_equal(self._digest.digest(), self.pointer.digest):
            raise AttachmentMismatch("attachment: the blob differs from the one the sender sealed")
        if not primitives.mac_equal(self._plain.digest(), self.pointer.plaintext_hash):
            raise AttachmentMismatch("attachment: the file differs from the one the sender sealed")


def seal_attachment(
    plaintext: bytes, rng: Rng, *, blob_id: str, type: str, name: str, **extra: Any
) -> tuple[bytes, AttachmentPointer]:
    """The whole file at once: the blob to upload and the pointer (with the server's blob id)."""
    sealer = AttachmentSealer(len(plaintext), rng)
    blob = sealer.header + sealer.push(plaintext)  # an empty file's push gives its one chunk
    sealed = sealer.finish()
    pointer = AttachmentPointer(
        blob_id=blob_id,
        key=sealed.key,
        digest=sealed.digest,
        plaintext_hash=sealed.plaintext_hash,
        size=sealed.size,
        type=type,
        name=name,
        **extra,
    )
    pointer.to_body()  # validates
    return blob, pointer


def open_attachment(blob: bytes, pointer: AttachmentPointer) -> bytes:
    opener = AttachmentOpener(pointer)
    plaintext = opener.pull(blob)
    opener.finish()
    return plaintext
