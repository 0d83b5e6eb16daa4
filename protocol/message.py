"""Message wire format (docs/protocol.md section 7)."""

from __future__ import annotations

from dataclasses import dataclass

from protocol.encoding import Reader, u8, u32
from protocol.exceptions import MalformedMessage
from protocol.primitives import is_canonical_x25519

PROTOCOL_VERSION = 1
TYPE_PREKEY = 1
TYPE_RATCHET = 2
HEADER_BYTES = 40
NONCE_BYTES = 24
TAG_BYTES = 16
MAX_MESSAGE_BYTES = 300_000


@dataclass(frozen=True)
class Header:
    dh: bytes
    pn: int
    n: int

    def encode(self) -> bytes:
        return self.dh + u32(self.pn) + u32(self.n)


@dataclass(frozen=True)
class RatchetMessage:
    header: Header
    nonce: bytes
    ciphertext: bytes

    def encode_body(self) -> bytes:
        return self.header.encode() + self.nonce + self.ciphertext

    def encode(self) -> bytes:
        return u8(PROTOCOL_VERSION) + u8(TYPE_RATCHET) + self.encode_body()


@dataclass(frozen=True)
class PrekeyMessage:
    identity_key: bytes
    base_key: bytes
    signed_prekey_id: int
    one_time_prekey_id: int | None
    message: RatchetMessage

    def encode(self) -> bytes:
        has_opk = self.one_time_prekey_id is not None
        return (
            u8(PROTOCOL_VERSION)
            + u8(TYPE_PREKEY)
            + self.identity_key
            + self.base_key
            + u32(self.signed_prekey_id)
            + u8(1 if has_opk else 0)
            + u32(self.one_time_prekey_id or 0)
            + self.message.encode_body()
        )


def _x25519_key(reader: Reader, what: str) -> bytes:
    key = reader.take(32)
    if not is_canonical_x25519(key):
        raise MalformedMessage(f"message {what}: expected a canonical X25519 key (u < 2^255 - 19)")
    return key


def _read_ratchet_body(reader: Reader) -> RatchetMessage:
    header = Header(dh=_x25519_key(reader, "ratchet key"), pn=reader.uint(4), n=reader.uint(4))
    nonce = reader.take(NONCE_BYTES)
    ciphertext = reader.rest()
    if len(ciphertext) < TAG_BYTES:
        raise MalformedMessage(
            f"message: expected a ciphertext of at least {TAG_BYTES} bytes, got {len(ciphertext)}"
        )
    return RatchetMessage(header=header, nonce=nonce, ciphertext=ciphertext)


def decode_message(data: bytes) -> PrekeyMessage | RatchetMessage:
    """Parse wire bytes; raises MalformedMessage for anything outside section 7."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise MalformedMessage(
            f"message: expected at most {MAX_MESSAGE_BYTES} bytes, got {len(data)}"
        )
    reader = Reader(data, what="message")
    version = reader.uint(1)
    if version != PROTOCOL_VERSION:
        raise MalformedMessage(f"message: expected version {PROTOCOL_VERSION}, got {version}")
    kind = reader.uint(1)
    if kind == TYPE_RATCHET:
        return _read_ratchet_body(reader)
    if kind != TYPE_PREKEY:
        raise MalformedMessage(f"message: expected type 1 or 2, got {kind}")
    identity_key = reader.take(32)
    base_key = _x25519_key(reader, "base key")
    spk_id = reader.uint(4)
    has_opk = reader.uint(1)
    opk_id = reader.uint(4)
    if has_opk not in (0, 1):
        raise MalformedMessage(f"prekey message: expected has_opk 0 or 1, got {has_opk}")
    if has_opk == 0 and opk_id != 0:
        raise MalformedMessage("prekey message: expected opk_id 0 without a one-time prekey")
    return PrekeyMessage(
        identity_key=identity_key,
        base_key=base_key,
        signed_prekey_id=spk_id,
        one_time_prekey_id=opk_id if has_opk else None,
        message=_read_ratchet_body(reader),
    )
