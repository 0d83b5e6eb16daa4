"""Thin wrappers over libsodium (PyNaCl); docs/protocol.md section 1. Nothing hand-rolled."""

from __future__ import annotations

import nacl.bindings as sodium
import nacl.exceptions
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey, MLKEM768PublicKey
from nacl._sodium import ffi, lib  # type: ignore[import-not-found]  # nacl.bindings calls these

from protocol.encoding import enc_str
from protocol.exceptions import DecryptionFailed, InvalidKey, InvalidSignature

AEAD_NONCE_BYTES = 24
AEAD_TAG_BYTES = 16
_ZERO_NONCE = bytes(AEAD_NONCE_BYTES)
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


def _raw(data: bytes | bytearray | memoryview) -> bytes:
    return data if isinstance(data, bytes) else bytes(data)


# blake2b, the AEAD, keystream and mac_equal call libsodium through PyNaCl's cffi module
# directly: nacl.bindings re-checks every argument in Python with eagerly formatted
# messages, three times the cost of hashing or sealing a short record, and account-state
# sync does that 10,000 times for one snapshot (section 23.9). The checks libsodium needs
# (sizes) are made here.
def blake2b(message: bytes, *, size: int, key: bytes = b"") -> bytes:
    if not 16 <= size <= 64 or len(key) > 64:
        raise InvalidKey("BLAKE2b: expected a size of 16 to 64 and a key of at most 64 bytes")
    message = _raw(message)
    out = ffi.new("unsigned char[]", size)
    lib.crypto_generichash_blake2b_salt_personal(
        out, size, message, len(message), key or ffi.NULL, len(key), ffi.NULL, ffi.NULL
    )
    return bytes(ffi.buffer(out, size))


def kdf(key: bytes, label: str, data: bytes, size: int) -> bytes:
    """KDF(key, label, data, n) = BLAKE2b(n, key, enc_str(label) ‖ data); section 1.1."""
    return blake2b(enc_str(label) + data, size=size, key=key)


def hash32(label: str, data: bytes) -> bytes:
    """H(label, data) = unkeyed BLAKE2b-256 of enc_str(label) ‖ data; section 1.1."""
    return blake2b(enc_str(label) + data, size=32)


class Hash32:
    """H(label, data) over data given in pieces (crypto_generichash_init/update/final): the
    same 32 bytes as `hash32(label, data)`, in constant memory (attachments, section 26)."""

    def __init__(self, label: str) -> None:
        self._state = sodium.crypto_generichash_blake2b_init(digest_size=32)
        sodium.crypto_generichash_blake2b_update(self._state, enc_str(label))

    def update(self, data: bytes) -> None:
        sodium.crypto_generichash_blake2b_update(self._state, _raw(data))

    def digest(self) -> bytes:
        return sodium.crypto_generichash_blake2b_final(self._state)


def _check_aead(key: bytes, nonce: bytes) -> None:
    _require_length(key, 32, "AEAD key")
    if not isinstance(nonce, bytes) or len(nonce) != AEAD_NONCE_BYTES:
        raise InvalidKey(f"AEAD nonce: expected {AEAD_NONCE_BYTES} bytes")


def aead_encrypt(key: bytes, nonce: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
    _check_aead(key, nonce)
    plaintext, associated_data = _raw(plaintext), _raw(associated_data or b"")
    size = len(plaintext) + AEAD_TAG_BYTES
    out = ffi.new("unsigned char[]", size)
    lib.crypto_aead_xchacha20poly1305_ietf_encrypt(
        out,
        ffi.NULL,
        plaintext,
        len(plaintext),
        associated_data,
        len(associated_data),
        ffi.NULL,
        nonce,
        key,
    )
    return bytes(ffi.buffer(out, size))


def aead_decrypt(key: bytes, nonce: bytes, ciphertext: bytes, associated_data: bytes) -> bytes:
    _check_aead(key, nonce)
    ciphertext, associated_data = _raw(ciphertext), _raw(associated_data or b"")
    if len(ciphertext) < AEAD_TAG_BYTES:
        raise DecryptionFailed("message authentication failed")
    size = len(ciphertext) - AEAD_TAG_BYTES
    out = ffi.new("unsigned char[]", max(size, 1))
    failed = lib.crypto_aead_xchacha20poly1305_ietf_decrypt(
        out,
        ffi.NULL,
        ffi.NULL,
        ciphertext,
        len(ciphertext),
        associated_data,
        len(associated_data),
        nonce,
        key,
    )
    if failed:
        raise DecryptionFailed("message authentication failed")
    return bytes(ffi.buffer(out, size))


def keystream(key: bytes, size: int) -> bytes:
    """The XChaCha20 keystream of `key` under the all-zero nonce from block 1 (section 23.4):
    the AEAD's ciphertext of `size` zero bytes without its tag (PyNaCl has no bare stream)."""
    _require_length(key, 32, "keystream key")
    return aead_encrypt(key, _ZERO_NONCE, bytes(size), b"")[:size]


def mac_equal(a: bytes, b: bytes) -> bool:
    """Constant-time comparison of two MACs (sodium_memcmp); different lengths are unequal."""
    return len(a) == len(b) and lib.sodium_memcmp(_raw(a), _raw(b), len(a)) == 0


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
        raise DecryptionFailed("secretstream chunk authentication failed") from exc


MLKEM768_SEED_BYTES = 64
MLKEM768_PUBLIC_KEY_BYTES = 1184
MLKEM768_CIPHERTEXT_BYTES = 1088
MLKEM768_SHARED_BYTES = 32


# ML-KEM-768 (FIPS 203) from `cryptography` (OpenSSL), which PyNaCl lacks; the JS mirror has
# libsodium's. A key pair is kept as its 64-byte seed (d ‖ z): the same seed gives the same
# public key in both (tests/vectors/mlkem.json).
def mlkem768_public(seed: bytes) -> bytes:
    """The encapsulation key of the key pair of `seed`."""
    _require_length(seed, MLKEM768_SEED_BYTES, "ML-KEM-768 seed")
    return MLKEM768PrivateKey.from_seed_bytes(seed).public_key().public_bytes_raw()


def mlkem768_check_public(public_key: bytes) -> None:
    """Refuse (InvalidKey) what is not a valid ML-KEM-768 encapsulation key: not 1184 bytes,
    or a coefficient out of range (FIPS 203's modulus check); what the server checks of an
    uploaded KEM prekey (docs/protocol.md 27.6)."""
    _require_length(public_key, MLKEM768_PUBLIC_KEY_BYTES, "ML-KEM-768 public key")
    try:
        MLKEM768PublicKey.from_public_bytes(public_key)
    except ValueError as exc:
        raise InvalidKey("ML-KEM-768 public key: not a valid encapsulation key") from exc


def mlkem768_encapsulate(public_key: bytes) -> tuple[bytes, bytes]:
    """(ciphertext, shared secret) for `public_key`; the randomness is OpenSSL's own
    (`cryptography` has no deterministic encapsulation, so Python's are not reproducible)."""
    _require_length(public_key, MLKEM768_PUBLIC_KEY_BYTES, "ML-KEM-768 public key")
    try:
        key = MLKEM768PublicKey.from_public_bytes(public_key)
    except ValueError as exc:  # not a valid encoding (its coefficients out of range)
        raise InvalidKey("ML-KEM-768 public key: not a valid encapsulation key") from exc
    shared, ciphertext = key.encapsulate()
    return ciphertext, shared


def mlkem768_decapsulate(seed: bytes, ciphertext: bytes) -> bytes:
    """The shared secret of `ciphertext`. A ciphertext of the right length never fails: one
    that was altered gives another secret (ML-KEM's implicit rejection), which the key
    derivation that uses it then refuses."""
    _require_length(seed, MLKEM768_SEED_BYTES, "ML-KEM-768 seed")
    if len(ciphertext) != MLKEM768_CIPHERTEXT_BYTES:
        raise DecryptionFailed(
            f"ML-KEM-768 ciphertext: expected {MLKEM768_CIPHERTEXT_BYTES} bytes, got {len(ciphertext)}"
        )
    return MLKEM768PrivateKey.from_seed_bytes(seed).decapsulate(ciphertext)


def sealed_box(plaintext: bytes, recipient_public_key: bytes) -> bytes:
    _require_length(recipient_public_key, 32, "X25519 public key")
    return sodium.crypto_box_seal(plaintext, recipient_public_key)


def sealed_box_open(ciphertext: bytes, public_key: bytes, private_key: bytes) -> bytes:
    try:
        return sodium.crypto_box_seal_open(ciphertext, public_key, private_key)
    except nacl.exceptions.CryptoError as exc:
        raise DecryptionFailed("sealed box authentication failed") from exc
