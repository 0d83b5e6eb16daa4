"""X3DH key agreement (docs/protocol.md section 5), and PQXDH for version 2 (section 27.2)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from protocol import primitives
from protocol.encoding import u8, u32
from protocol.keys import IdentityKeyPair, KemPrekey, PrekeyBundle, X25519KeyPair
from protocol.rng import Rng

X3DH_LABEL = "Parley v1 X3DH"
PQXDH_LABEL = "Parley v2 PQXDH"
_F = b"\xff" * 32

# (ML-KEM public key, m = rng(32)) -> (ciphertext, shared secret). libsodium (JS) encapsulates
# deterministically from m; `cryptography` cannot, so Python's default ignores m and uses
# OpenSSL's randomness (section 27.2), and the vectors pass the recorded encapsulation of m.
Encapsulate = Callable[[bytes, bytes], tuple[bytes, bytes]]


def random_encapsulate(public_key: bytes, _m: bytes) -> tuple[bytes, bytes]:
    return primitives.mlkem768_encapsulate(public_key)


@dataclass(frozen=True)
class X3DHResult:
    shared_secret: bytes
    associated_data: bytes
    dh_outputs: tuple[bytes, ...]
    base_key: X25519KeyPair | None = None  # the initiator's ephemeral key; None for the responder
    version: int = 1
    binding: bytes = b""  # version 2: H of the first message's fields, in AD (section 27.2)
    kem_ciphertext: bytes | None = None  # version 2, the initiator's


def derive_shared_secret(dh_outputs: tuple[bytes, ...], kem_shared: bytes | None = None) -> bytes:
    if kem_shared is None:
        return primitives.kdf(bytes(32), X3DH_LABEL, _F + b"".join(dh_outputs), 32)
    return primitives.kdf(bytes(32), PQXDH_LABEL, _F + b"".join(dh_outputs) + kem_shared, 32)


def session_binding(
    *,
    base_key: bytes,
    signed_prekey_id: int,
    one_time_prekey_id: int | None,
    kem_prekey_id: int,
    kem_public_key: bytes,
    kem_ciphertext: bytes,
) -> bytes:
    """H("Parley v2 session", every field of the first message and the KEM key used)."""
    return primitives.hash32(
        "Parley v2 session",
        base_key
        + u32(signed_prekey_id)
        + u8(0 if one_time_prekey_id is None else 1)
        + u32(one_time_prekey_id or 0)
        + u32(kem_prekey_id)
        + primitives.hash32("Parley v2 kem public key", kem_public_key)
        + kem_ciphertext,
    )


def initiate(
    *,
    identity: IdentityKeyPair,
    bundle: PrekeyBundle,
    rng: Rng,
    encapsulate: Encapsulate = random_encapsulate,
) -> X3DHResult:
    """Alice's side; `bundle` must already be verified (keys.verify_prekey_bundle). Draws rng(32)
    for the base key, then, for a bundle with a KEM prekey (version 2), rng(32) for m."""
    ephemeral = X25519KeyPair.generate(rng)
    remote_identity = primitives.ed25519_pk_to_x25519(bundle.identity_key)
    outputs = [
        primitives.dh(identity.x25519_private, bundle.signed_prekey),
        primitives.dh(ephemeral.private, remote_identity),
        primitives.dh(ephemeral.private, bundle.signed_prekey),
    ]
    if bundle.one_time_prekey is not None:
        outputs.append(primitives.dh(ephemeral.private, bundle.one_time_prekey))
    ad = identity.public + bundle.identity_key
    kem = bundle.kem_prekey
    if kem is None:
        return X3DHResult(
            shared_secret=derive_shared_secret(tuple(outputs)),
            associated_data=ad,
            dh_outputs=tuple(outputs),
            base_key=ephemeral,
        )
    ciphertext, shared = encapsulate(kem.public_key, rng(32))
    binding = session_binding(
        base_key=ephemeral.public,
        signed_prekey_id=bundle.signed_prekey_id,
        one_time_prekey_id=bundle.one_time_prekey_id,
        kem_prekey_id=kem.id,
        kem_public_key=kem.public_key,
        kem_ciphertext=ciphertext,
    )
    return X3DHResult(
        shared_secret=derive_shared_secret(tuple(outputs), shared),
        associated_data=ad + binding,
        dh_outputs=tuple(outputs),
        base_key=ephemeral,
        version=2,
        binding=binding,
        kem_ciphertext=ciphertext,
    )


def respond(
    *,
    identity: IdentityKeyPair,
    signed_prekey: X25519KeyPair,
    one_time_prekey: X25519KeyPair | None,
    initiator_identity_key: bytes,
    base_key: bytes,
    signed_prekey_id: int = 0,
    one_time_prekey_id: int | None = None,
    kem_prekey: KemPrekey | None = None,
    kem_ciphertext: bytes | None = None,
) -> X3DHResult:
    """Bob's side, from the fields of a prekey message (version 2 with `kem_prekey` and
    `kem_ciphertext`, and then the prekey ids, which the binding covers)."""
    remote_identity = primitives.ed25519_pk_to_x25519(initiator_identity_key)
    outputs = [
        primitives.dh(signed_prekey.private, remote_identity),
        primitives.dh(identity.x25519_private, base_key),
        primitives.dh(signed_prekey.private, base_key),
    ]
    if one_time_prekey is not None:
        outputs.append(primitives.dh(one_time_prekey.private, base_key))
    ad = initiator_identity_key + identity.public
    if kem_prekey is None or kem_ciphertext is None:
        return X3DHResult(
            shared_secret=derive_shared_secret(tuple(outputs)),
            associated_data=ad,
            dh_outputs=tuple(outputs),
        )
    shared = primitives.mlkem768_decapsulate(kem_prekey.seed, kem_ciphertext)
    binding = session_binding(
        base_key=base_key,
        signed_prekey_id=signed_prekey_id,
        one_time_prekey_id=one_time_prekey_id,
        kem_prekey_id=kem_prekey.id,
        kem_public_key=kem_prekey.public,
        kem_ciphertext=kem_ciphertext,
    )
    return X3DHResult(
        shared_secret=derive_shared_secret(tuple(outputs), shared),
        associated_data=ad + binding,
        dh_outputs=tuple(outputs),
        version=2,
        binding=binding,
    )
