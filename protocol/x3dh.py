"""X3DH key agreement (docs/protocol.md section 5)."""

from __future__ import annotations

from dataclasses import dataclass

from protocol import primitives
from protocol.keys import IdentityKeyPair, PrekeyBundle, X25519KeyPair
from protocol.rng import Rng

X3DH_LABEL = "Parley v1 X3DH"
_F = b"\xff" * 32


@dataclass(frozen=True)
class X3DHResult:
    shared_secret: bytes
    associated_data: bytes
    dh_outputs: tuple[bytes, ...]
    base_key: X25519KeyPair | None = None  # the initiator's ephemeral key; None for the responder


def derive_shared_secret(dh_outputs: tuple[bytes, ...]) -> bytes:
    return primitives.kdf(bytes(32), X3DH_LABEL, _F + b"".join(dh_outputs), 32)


def initiate(*, identity: IdentityKeyPair, bundle: PrekeyBundle, rng: Rng) -> X3DHResult:
    """Alice's side; `bundle` must already be verified (keys.verify_prekey_bundle). Draws rng(32)."""
    ephemeral = X25519KeyPair.generate(rng)
    remote_identity = primitives.ed25519_pk_to_x25519(bundle.identity_key)
    outputs = [
        primitives.dh(identity.x25519_private, bundle.signed_prekey),
        primitives.dh(ephemeral.private, remote_identity),
        primitives.dh(ephemeral.private, bundle.signed_prekey),
    ]
    if bundle.one_time_prekey is not None:
        outputs.append(primitives.dh(ephemeral.private, bundle.one_time_prekey))
    return X3DHResult(
        shared_secret=derive_shared_secret(tuple(outputs)),
        associated_data=identity.public + bundle.identity_key,
        dh_outputs=tuple(outputs),
        base_key=ephemeral,
    )


def respond(
    *,
    identity: IdentityKeyPair,
    signed_prekey: X25519KeyPair,
    one_time_prekey: X25519KeyPair | None,
    initiator_identity_key: bytes,
    base_key: bytes,
) -> X3DHResult:
    """Bob's side, from the fields of a prekey message."""
    remote_identity = primitives.ed25519_pk_to_x25519(initiator_identity_key)
    outputs = [
        primitives.dh(signed_prekey.private, remote_identity),
        primitives.dh(identity.x25519_private, base_key),
        primitives.dh(signed_prekey.private, base_key),
    ]
    if one_time_prekey is not None:
        outputs.append(primitives.dh(one_time_prekey.private, base_key))
    return X3DHResult(
        shared_secret=derive_shared_secret(tuple(outputs)),
        associated_data=initiator_identity_key + identity.public,
        dh_outputs=tuple(outputs),
    )
