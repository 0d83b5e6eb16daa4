"""Sender keys: one signed symmetric chain per (group, sending device), its distribution over
the pairwise sessions, group messages and rotation (docs/protocol.md sections 25.4, 25.5)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field, replace
from typing import Any

from protocol import primitives
from protocol.content import ContentType, validate_body
from protocol.encoding import (
    Reader,
    b64u_decode,
    b64u_encode,
    enc_str,
    is_uint,
    label,
    u8,
    u32,
    u64,
)
from protocol.exceptions import (
    MalformedMessage,
    ReplayDetected,
    SenderKeyUnknown,
    TooManySkippedMessages,
)
from protocol.message import MAX_MESSAGE_BYTES, PROTOCOL_VERSION
from protocol.ratchetkeys import MAX_SKIP, MAX_SKIPPED_TOTAL
from protocol.rng import Rng

GROUP_MESSAGE_TYPE = 3
CHAIN_LABEL = "Parley v1 sender chain"
MESSAGE_LABEL = "Parley v1 group message"
MAX_ITERATION = 0xFFFFFFFF
_MESSAGE_PREFIX = label(MESSAGE_LABEL)
_CHAIN_MESSAGE = b"\x01"
_CHAIN_NEXT = b"\x02"
_SIGNATURE_BYTES = 64
_NONCE_BYTES = primitives.AEAD_NONCE_BYTES


def kdf_sk(chain_key: bytes) -> tuple[bytes, bytes]:
    """(message key, next chain key) of a sender-key chain (section 25.4)."""
    return (
        primitives.kdf(chain_key, CHAIN_LABEL, _CHAIN_MESSAGE, 32),
        primitives.kdf(chain_key, CHAIN_LABEL, _CHAIN_NEXT, 32),
    )


@dataclass(frozen=True)
class SenderKey:
    """The sending half: the chain at `iteration` (the next message's), the signing pair and
    the devices (identity keys) this key has been distributed to."""

    group_id: bytes
    sender: str
    device: str
    key_id: bytes
    chain_key: bytes
    iteration: int
    signing_key: bytes
    signing_secret: bytes
    distributed: frozenset[bytes] = frozenset()

    def to_dict(self) -> dict[str, Any]:
        return {
            "group_id": b64u_encode(self.group_id),
            "sender": self.sender,
            "device": self.device,
            "key_id": b64u_encode(self.key_id),
            "chain_key": b64u_encode(self.chain_key),
            "iteration": self.iteration,
            "signing_key": b64u_encode(self.signing_key),
            "signing_secret": b64u_encode(self.signing_secret),
            "distributed": [b64u_encode(k) for k in sorted(self.distributed)],
        }

    @classmethod
    def from_dict(cls, data: Any) -> SenderKey:
        try:
            key = cls(
                **_chain_fields(data),
                signing_secret=b64u_decode(data["signing_secret"], length=64, what="signing key"),
                distributed=frozenset(
                    b64u_decode(k, length=32, what="distributed to") for k in data["distributed"]
                ),
            )
        except (KeyError, TypeError) as exc:
            raise MalformedMessage(f"sender key: expected the fields of 25.4 ({exc})") from exc
        return key


@dataclass(frozen=True)
class ReceivingKey:
    """The receiving half, from a distribution: the chain at the next iteration expected,
    the sender's public signing key and the keys of skipped iterations (oldest first)."""

    group_id: bytes
    sender: str
    device: str
    key_id: bytes
    chain_key: bytes
    iteration: int
    signing_key: bytes
    skipped: dict[int, bytes] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "group_id": b64u_encode(self.group_id),
            "sender": self.sender,
            "device": self.device,
            "key_id": b64u_encode(self.key_id),
            "chain_key": b64u_encode(self.chain_key),
            "iteration": self.iteration,
            "signing_key": b64u_encode(self.signing_key),
            "skipped": [{"n": n, "key": b64u_encode(k)} for n, k in self.skipped.items()],
        }

    @classmethod
    def from_dict(cls, data: Any) -> ReceivingKey:
        try:
            skipped = {}
            for item in data["skipped"]:
                _expect(is_uint(item["n"]), "receiving key: expected integer skipped iterations")
                skipped[item["n"]] = b64u_decode(item["key"], length=32, what="skipped key")
            return cls(**_chain_fields(data), skipped=skipped)
        except (KeyError, TypeError) as exc:
            raise MalformedMessage(f"receiving key: expected the fields of 25.4 ({exc})") from exc


def _chain_fields(data: Any) -> dict[str, Any]:
    _expect(isinstance(data, dict), "sender key: expected an object")
    _expect(
        isinstance(data["sender"], str) and isinstance(data["device"], str),
        "sender key: expected string sender and device",
    )
    _expect(is_uint(data["iteration"]), "sender key: expected an integer iteration")
    return {
        "group_id": b64u_decode(data["group_id"], length=16, what="group id"),
        "sender": data["sender"],
        "device": data["device"],
        "key_id": b64u_decode(data["key_id"], length=16, what="key id"),
        "chain_key": b64u_decode(data["chain_key"], length=32, what="chain key"),
        "iteration": data["iteration"],
        "signing_key": b64u_decode(data["signing_key"], length=32, what="signing key"),
    }


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise MalformedMessage(message)


def new_sender_key(rng: Rng, *, group_id: bytes, sender: str, device: str) -> SenderKey:
    """Draws the key id rng(16), the chain key rng(32), then the signing seed rng(32)."""
    _expect(isinstance(group_id, bytes) and len(group_id) == 16, "sender key: expected a group id")
    key_id = rng(16)
    chain_key = rng(32)
    public, secret = primitives.ed25519_keypair(rng(32))
    return SenderKey(group_id, sender, device, key_id, chain_key, 0, public, secret)


def distribution_body(key: SenderKey, *, head_seq: int, head_hash: bytes) -> dict[str, Any]:
    """The body of a GROUP_SENDER_KEY content (type 11): the chain from its current iteration."""
    body = {
        "group_id": b64u_encode(key.group_id),
        "key_id": b64u_encode(key.key_id),
        "chain_key": b64u_encode(key.chain_key),
        "iteration": key.iteration,
        "signing_key": b64u_encode(key.signing_key),
        "head_seq": head_seq,
        "head_hash": b64u_encode(head_hash),
    }
    validate_body(ContentType.GROUP_SENDER_KEY, body)
    return body


def receiving_key(body: dict[str, Any], *, sender: str, device: str) -> ReceivingKey:
    """A receiving chain from a distribution that came over the pairwise session with
    `sender`'s `device`: the body names no sender, so it cannot name another."""
    validate_body(ContentType.GROUP_SENDER_KEY, body)
    return ReceivingKey(
        group_id=b64u_decode(body["group_id"], length=16),
        sender=sender,
        device=device,
        key_id=b64u_decode(body["key_id"], length=16),
        chain_key=b64u_decode(body["chain_key"], length=32),
        iteration=body["iteration"],
        signing_key=b64u_decode(body["signing_key"], length=32),
    )


@dataclass(frozen=True)
class SendPlan:
    """What to do before the next group message: `key` to send with (new when `rotated`) and
    the devices (identity keys, ascending) that need its distribution first."""

    key: SenderKey
    rotated: bool
    distribute_to: tuple[bytes, ...]


def prepare_send(key: SenderKey, targets: Collection[bytes], rng: Rng) -> SendPlan:
    """Rotate if a device the key went to is no longer a target (a removal, section 25.4);
    else distribute the current key to the targets that lack it. The returned key already
    counts them as distributed: the engine stores it with those sends."""
    wanted = frozenset(targets)
    if key.distributed - wanted:
        fresh = new_sender_key(rng, group_id=key.group_id, sender=key.sender, device=key.device)
        return SendPlan(replace(fresh, distributed=wanted), True, tuple(sorted(wanted)))
    missing = wanted - key.distributed
    return SendPlan(replace(key, distributed=wanted), False, tuple(sorted(missing)))


@dataclass(frozen=True)
class GroupMessage:
    """A decoded group message (section 25.5); `header` is its encoded header."""

    group_id: bytes
    sender: str
    device: str
    key_id: bytes
    iteration: int
    head_seq: int
    head_hash: bytes
    nonce: bytes
    ciphertext: bytes
    signature: bytes
    header: bytes


def _header(
    key: SenderKey | ReceivingKey, iteration: int, head_seq: int, head_hash: bytes
) -> bytes:
    _expect(isinstance(head_hash, bytes) and len(head_hash) == 32, "group head: expected 32 bytes")
    return (
        u8(PROTOCOL_VERSION)
        + u8(GROUP_MESSAGE_TYPE)
        + key.group_id
        + enc_str(key.sender)
        + enc_str(key.device)
        + key.key_id
        + u32(iteration)
        + u64(head_seq)
        + head_hash
    )


def decode_group_message(data: bytes) -> GroupMessage:
    _expect(
        isinstance(data, bytes) and len(data) <= MAX_MESSAGE_BYTES,
        f"group message: expected at most {MAX_MESSAGE_BYTES} bytes",
    )
    reader = Reader(data, what="group message")
    version, kind = reader.uint(1), reader.uint(1)
    _expect(version == PROTOCOL_VERSION, f"group message: expected version 1, got {version}")
    _expect(kind == GROUP_MESSAGE_TYPE, f"group message: expected type 3, got {kind}")
    group_id, sender, device, key_id = (
        reader.take(16),
        reader.string(),
        reader.string(),
        reader.take(16),
    )
    iteration, head_seq, head_hash = reader.uint(4), reader.uint(8), reader.take(32)
    header = data[: len(data) - reader.remaining()]
    nonce = reader.take(_NONCE_BYTES)
    rest = reader.rest()
    _expect(
        len(rest) >= primitives.AEAD_TAG_BYTES + _SIGNATURE_BYTES,
        "group message: expected a ciphertext of at least 16 bytes and a signature",
    )
    return GroupMessage(
        group_id,
        sender,
        device,
        key_id,
        iteration,
        head_seq,
        head_hash,
        nonce,
        rest[:-_SIGNATURE_BYTES],
        rest[-_SIGNATURE_BYTES:],
        header,
    )


def encrypt_group(
    key: SenderKey, plaintext: bytes, *, head_seq: int, head_hash: bytes, rng: Rng
) -> tuple[SenderKey, bytes]:
    """(the key one step on, the group message) for an encoded content."""
    _expect(key.iteration <= MAX_ITERATION, "sender key: chain exhausted, rotate first")
    header = _header(key, key.iteration, head_seq, head_hash)
    message_key, next_chain = kdf_sk(key.chain_key)
    nonce = rng(_NONCE_BYTES)
    ciphertext = primitives.aead_encrypt(message_key, nonce, plaintext, _MESSAGE_PREFIX + header)
    signed = header + nonce + ciphertext
    signature = primitives.ed25519_sign(key.signing_secret, _MESSAGE_PREFIX + signed)
    data = signed + signature
    _expect(len(data) <= MAX_MESSAGE_BYTES, f"group message: over {MAX_MESSAGE_BYTES} bytes")
    return replace(key, chain_key=next_chain, iteration=key.iteration + 1), data


def decrypt_group(chain: ReceivingKey, data: bytes) -> tuple[ReceivingKey, bytes]:
    """(the chain after, the plaintext); every refusal leaves `chain` as it was (25.5)."""
    message = decode_group_message(data)
    ours = (chain.group_id, chain.sender, chain.device, chain.key_id)
    if (message.group_id, message.sender, message.device, message.key_id) != ours:
        raise SenderKeyUnknown("group message: expected this chain's group, sender and key id")
    primitives.ed25519_verify(
        chain.signing_key,
        _MESSAGE_PREFIX + data[:-_SIGNATURE_BYTES],
        message.signature,
        what="group message",
    )
    skipped = dict(chain.skipped)
    chain_key, n, wanted = chain.chain_key, chain.iteration, message.iteration
    if wanted in skipped:
        message_key = skipped.pop(wanted)
    elif wanted < n:
        raise ReplayDetected(f"group message: iteration {wanted} already decrypted")
    elif wanted - n > MAX_SKIP:
        raise TooManySkippedMessages(
            f"group message: expected at most {MAX_SKIP} skipped keys, got {wanted - n}"
        )
    else:
        while n < wanted:
            skipped[n], chain_key = kdf_sk(chain_key)
            n += 1
        message_key, chain_key = kdf_sk(chain_key)
        n += 1
        while len(skipped) > MAX_SKIPPED_TOTAL:
            del skipped[next(iter(skipped))]
    plaintext = primitives.aead_decrypt(
        message_key, message.nonce, message.ciphertext, _MESSAGE_PREFIX + message.header
    )
    return replace(chain, chain_key=chain_key, iteration=n, skipped=skipped), plaintext
