"""Thin wrappers over libsodium (PyNaCl); docs/protocol.md section 1. Nothing hand-rolled."""

from __future__ import annotations

import nacl.bindings as sodium
import nacl.exceptions

from protocol.encoding import enc_str
from protocol.exceptions import DecryptionFailed, InvalidKey, InvalidSignature

AEAD_NONCE_BYTES = 24
AEAD_TAG_BYTES = 16
STREAM_HEADER_BYTES = sodium.crypto_secretstream_xchacha20poly1305_HEADERBYTES
STREAM_ABYTES = sodium.crypto_secretstream_xchacha20poly1305_ABYTES
TAG_MESSAGE = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
TAG_FINAL = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL


def _require_length(value: bytes, length: int, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != length:
        got = len(value) if isinstance(value, bytes) else type(value).__name__
        raise InvalidKey(f"{what}: expected {length} bytes, got {got}")


def ed25519_keypair(seed: bytes) -> tuple[bytes, bytes]:
    """(public 32, secret 64) from a 32-byte seed."""
    _require_length(seed, 32, "Ed25519 seed")
    return sodium.crypto_sign_seed_keypair(seed)


def ed25519_sign(secret_key: bytes, message: bytes) -> bytes:
    return sodium.crypto_sign(message, secret_key)[:64]


def ed25519_verify(public_key: bytes, message: bytes, signature: bytes, *, what: str) -> None:
    """Raise InvalidSignature naming `what` unless `signature` is valid."""
    _require_length(public_key, 32, f"{what} public key")
    if len(signature) != 64:
        raise InvalidSignature(f"{what}: expected a 64-byte signature, got {len(signature)}")
    try:
        sodium.crypto_sign_open(signature + message, public_key)
    except nacl.exceptions.BadSignatureError as exc:
        raise InvalidSignature(f"{what}: signature does not verify") from exc


def ed25519_pk_to_x25519(public_key: bytes) -> bytes:
    _require_length(public_key, 32, "Ed25519 public key")
    try:
        return sodium.crypto_sign_ed25519_pk_to_curve25519(public_key)
    except nacl.exceptions.RuntimeError as exc:
        raise InvalidKey("Ed25519 public key: expected a valid curve point") from exc


def ed25519_sk_to_x25519(secret_key: bytes) -> bytes:
    _require_length(secret_key, 64, "Ed25519 secret key")
    return sodium.crypto_sign_ed25519_sk_to_curve25519(secret_key)


def x25519_public(private_key: bytes) -> bytes:
    _require_length(private_key, 32, "X25519 private key")
    return sodium.crypto_scalarmult_base(private_key)


_CURVE25519_P = 2**255 - 19


def is_canonical_x25519(public_key: bytes) -> bool:
    """True if the key is the unique encoding of its value (little-endian u < 2^255 - 19).

    X25519 ignores the top bit, so without this check one key has two encodings and a
    replayed prekey message could pass the used-base-key check with a flipped top bit.
    """
    return len(public_key) == 32 and int.from_bytes(public_key, "little") < _CURVE25519_P


def dh(private_key: bytes, public_key: bytes) -> bytes:
    """X25519; refuses an all-zero output (low-order public key)."""
    _require_length(private_key, 32, "X25519 private key")
    _require_length(public_key, 32, "X25519 public key")
    try:
        out = sodium.crypto_scalarmult(private_key, public_key)
    except nacl.exceptions.RuntimeError as exc:
        raise InvalidKey("X25519 public key: expected a point of large order") from exc
    if out == bytes(32):
        raise InvalidKey("X25519 public key: expected a point of large order")
    return out


def blake2b(message: bytes, *, size: int, key: bytes = b"") -> bytes:
    return sodium.crypto_generichash_blake2b_salt_personal(message, digest_size=size, key=key)


def kdf(key: bytes, label: str, data: bytes, size: int) -> bytes:
    """KDF(key, label, data, n) = BLAKE2b(n, key, enc_str(label) ‖ data); section 1.1."""
    return blake2b(enc_str(label) + data, size=size, key=key)


def hash32(label: str, data: bytes) -> bytes:
    """H(label, data) = unkeyed BLAKE2b-256 of enc_str(label) ‖ data; section 1.1."""
    return blake2b(enc_str(label) + data, size=32)


def aead_encrypt(key: bytes, nonce: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
    return sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, associated_data, nonce, key)


def aead_decrypt(key: bytes, nonce: bytes, ciphertext: bytes, associated_data: bytes) -> bytes:
    try:
        return sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
            ciphertext, associated_data, nonce, key
        )
    except nacl.exceptions.CryptoError as exc:
        raise DecryptionFailed("message authentication failed") from exc


def stream_state(key: bytes, header: bytes) -> sodium.crypto_secretstream_xchacha20poly1305_state:
    """A secretstream state for key and header; used for both push and pull (section 12)."""
    _require_length(key, 32, "secretstream key")
    _require_length(header, STREAM_HEADER_BYTES, "secretstream header")
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    sodium.crypto_secretstream_xchacha20poly1305_init_pull(state, header, key)
    return state


def stream_push(
    state: sodium.crypto_secretstream_xchacha20poly1305_state, chunk: bytes, tag: int
) -> bytes:
    return sodium.crypto_secretstream_xchacha20poly1305_push(state, chunk, None, tag)


def stream_pull(
    state: sodium.crypto_secretstream_xchacha20poly1305_state, chunk: bytes
) -> tuple[bytes, int]:
    try:
        return sodium.crypto_secretstream_xchacha20poly1305_pull(state, chunk, None)
    except nacl.exceptions.CryptoError as exc:
        raise DecryptionFailed("history chunk authentication failed") from exc


def sealed_box(plaintext: bytes, recipient_public_key: bytes) -> bytes:
    _require_length(recipient_public_key, 32, "X25519 public key")
    return sodium.crypto_box_seal(plaintext, recipient_public_key)


def sealed_box_open(ciphertext: bytes, public_key: bytes, private_key: bytes) -> bytes:
    try:
        return sodium.crypto_box_seal_open(ciphertext, public_key, private_key)
    except nacl.exceptions.CryptoError as exc:
        raise DecryptionFailed("sealed box authentication failed") from exc
