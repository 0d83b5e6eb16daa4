"""Message wire format (docs/protocol.md section 7; version 2 in section 27.3)."""

from __future__ import annotations

from dataclasses import dataclass

from protocol.encoding import Reader, u8, u32
from protocol.exceptions import MalformedMessage
from protocol.primitives import (
    MLKEM768_CIPHERTEXT_BYTES,
    MLKEM768_PUBLIC_KEY_BYTES,
    is_canonical_x25519,
)

PROTOCOL_VERSION = 1
PROTOCOL_VERSIONS = (1, 2)
TYPE_PREKEY = 1
TYPE_RATCHET = 2
HEADER_BYTES = 40
NONCE_BYTES = 24
TAG_BYTES = 16
MAX_MESSAGE_BYTES = 300_000
KEM_FLAG_OFFER = 1
KEM_FLAG_ANSWER = 2


@dataclass(frozen=True)
class KemOffer:
    """A fresh ML-KEM key one side offers in its messages (section 27.4)."""

    id: int
    public_key: bytes


@dataclass(frozen=True)
class KemAnswer:
    """The encapsulation to the other side's offer `id` (section 27.4)."""

    id: int
    ciphertext: bytes


@dataclass(frozen=True)
class Header:
    dh: bytes
    pn: int
    n: int
    version: int = 1
    kem_offer: KemOffer | None = None
    kem_answer: KemAnswer | None = None

    def encode(self) -> bytes:
        head = self.dh + u32(self.pn) + u32(self.n)
        if self.version == 1:
            return head
        flags = (KEM_FLAG_OFFER if self.kem_offer else 0) | (
            KEM_FLAG_ANSWER if self.kem_answer else 0
        )
        out = head + u8(flags)
        if self.kem_offer is not None:
            out += u32(self.kem_offer.id) + self.kem_offer.public_key
        if self.kem_answer is not None:
            out += u32(self.kem_answer.id) + self.kem_answer.ciphertext
        return out


@dataclass(frozen=True)
class RatchetMessage:
    header: Header
    nonce: bytes
    ciphertext: bytes

    @property
    def version(self) -> int:
        return self.header.version

    def encode_body(self) -> bytes:
        return self.header.encode() + self.nonce + self.ciphertext

    def encode(self) -> bytes:
        return u8(self.version) + u8(TYPE_RATCHET) + self.encode_body()


@dataclass(frozen=True)
class PrekeyMessage:
    identity_key: bytes
    base_key: bytes
    signed_prekey_id: int
    one_time_prekey_id: int | None
    message: RatchetMessage
    kem_prekey_id: int | None = None  # version 2 (section 27.3)
    kem_ciphertext: bytes | None = None

    @property
    def version(self) -> int:
        return self.message.version

    def encode(self) -> bytes:
        has_opk = self.one_time_prekey_id is not None
        kem = b""
        if self.version == 2:
            assert self.kem_prekey_id is not None and self.kem_ciphertext is not None
            kem = u32(self.kem_prekey_id) + self.kem_ciphertext
        return (
            u8(self.version)
            + u8(TYPE_PREKEY)
            + self.identity_key
            + self.base_key
            + u32(self.signed_prekey_id)
            + u8(1 if has_opk else 0)
            + u32(self.one_time_prekey_id or 0)
            + kem
            + self.message.encode_body()
        )


def _x25519_key(reader: Reader, what: str) -> bytes:
    key = reader.take(32)
    if not is_canonical_x25519(key):
        raise MalformedMessage(f"message {what}: expected a canonical X25519 key (u < 2^255 - 19)")
    return key


def _read_header(reader: Reader, version: int) -> Header:
    dh = _x25519_key(reader, "ratchet key")
    pn, n = reader.uint(4), reader.uint(4)
    if version == 1:
        return Header(dh=dh, pn=pn, n=n)
    flags = reader.uint(1)
    if flags > KEM_FLAG_OFFER | KEM_FLAG_ANSWER:
        raise MalformedMessage(f"message: expected kem_flags 0 to 3, got {flags}")
    offer = answer = None
    if flags & KEM_FLAG_OFFER:
        offer = KemOffer(id=reader.uint(4), public_key=reader.take(MLKEM768_PUBLIC_KEY_BYTES))
    if flags & KEM_FLAG_ANSWER:
        answer = KemAnswer(id=reader.uint(4), ciphertext=reader.take(MLKEM768_CIPHERTEXT_BYTES))
    return Header(dh=dh, pn=pn, n=n, version=2, kem_offer=offer, kem_answer=answer)


def _read_ratchet_body(reader: Reader, version: int) -> RatchetMessage:
    header = _read_header(reader, version)
    nonce = reader.take(NONCE_BYTES)
    ciphertext = reader.rest()
    if len(ciphertext) < TAG_BYTES:
        raise MalformedMessage(
            f"message: expected a ciphertext of at least {TAG_BYTES} bytes, got {len(ciphertext)}"
        )
    return RatchetMessage(header=header, nonce=nonce, ciphertext=ciphertext)


def decode_message(data: bytes) -> PrekeyMessage | RatchetMessage:
    """Parse wire bytes; raises MalformedMessage for anything outside sections 7 and 27.3."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise MalformedMessage(
            f"message: expected at most {MAX_MESSAGE_BYTES} bytes, got {len(data)}"
        )
    reader = Reader(data, what="message")
    version = reader.uint(1)
    if version not in PROTOCOL_VERSIONS:
        raise MalformedMessage(f"message: expected version 1 or 2, got {version}")
    kind = reader.uint(1)
    if kind == TYPE_RATCHET:
        return _read_ratchet_body(reader, version)
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
    kem_id = kem_ct = None
    if version == 2:
        kem_id, kem_ct = reader.uint(4), reader.take(MLKEM768_CIPHERTEXT_BYTES)
    return PrekeyMessage(
        identity_key=identity_key,
        base_key=base_key,
        signed_prekey_id=spk_id,
        one_time_prekey_id=opk_id if has_opk else None,
        message=_read_ratchet_body(reader, version),
        kem_prekey_id=kem_id,
        kem_ciphertext=kem_ct,
    )
