"""Bob's side of starting a session: accepting the first prekey message from a device
(docs/protocol.md section 7.1)."""

from __future__ import annotations

from collections.abc import Container, Mapping
from dataclasses import dataclass

from protocol import x3dh
from protocol.exceptions import (
    DowngradeRefused,
    ReplayDetected,
    UnknownPrekey,
    UnknownSession,
    UntrustedIdentity,
)
from protocol.keys import IdentityKeyPair, KemPrekey, X25519KeyPair
from protocol.message import PrekeyMessage, decode_message
from protocol.pqratchet import KemState
from protocol.ratchet import Session
from protocol.rng import Rng
from protocol.x3dh import Encapsulate, random_encapsulate


@dataclass(frozen=True)
class InboundSession:
    """Result of accepting a prekey message. The caller then records `base_key` as used,
    deletes one-time prekey `one_time_prekey_id` and the one-time KEM prekey
    `one_time_kem_prekey_id` (never the last-resort one) and stores `session`."""

    session: Session
    plaintext: bytes
    base_key: bytes
    one_time_prekey_id: int | None
    one_time_kem_prekey_id: int | None = None


def accept_prekey_message(
    data: bytes,
    *,
    identity: IdentityKeyPair,
    signed_prekeys: Mapping[int, X25519KeyPair],
    one_time_prekeys: Mapping[int, X25519KeyPair],
    sender_identity_key: bytes,
    used_base_keys: Container[bytes],
    rng: Rng,
    kem_prekeys: Mapping[int, KemPrekey] | None = None,
    sender_speaks_v2: bool = False,
    encapsulate: Encapsulate = random_encapsulate,
) -> InboundSession:
    """Start a responder session from a prekey message (section 7.1, step 2; version 2 in
    27.2, with `kem_prekeys`: the one-time and the last-resort KEM prekeys by id).

    `sender_identity_key` comes from the sender's verified device list, and so does
    `sender_speaks_v2` (its entry lists version 2): a version-1 prekey message from such a
    device is DowngradeRefused (section 27.5). Nothing is consumed here: on success the caller
    records the base key and deletes the one-time prekeys.
    """
    message = decode_message(data)
    if not isinstance(message, PrekeyMessage):
        raise UnknownSession(
            "message: expected a prekey message to start a session, got a ratchet message"
        )
    if message.version == 1 and sender_speaks_v2:
        raise DowngradeRefused(
            "prekey message: version 1 from a device whose signed entry lists version 2"
        )
    if message.identity_key != sender_identity_key:
        raise UntrustedIdentity(
            "prekey message: sender identity key differs from the signed device list"
        )
    if message.base_key in used_base_keys:
        raise ReplayDetected("prekey message: base key already used")
    signed_prekey = signed_prekeys.get(message.signed_prekey_id)
    if signed_prekey is None:
        raise UnknownPrekey(f"prekey message: no signed prekey with id {message.signed_prekey_id}")
    one_time_prekey = None
    if message.one_time_prekey_id is not None:
        one_time_prekey = one_time_prekeys.get(message.one_time_prekey_id)
        if one_time_prekey is None:
            raise UnknownPrekey(
                f"prekey message: no one-time prekey with id {message.one_time_prekey_id}"
            )
    kem_prekey = None
    if message.kem_prekey_id is not None:
        kem_prekey = (kem_prekeys or {}).get(message.kem_prekey_id)
        if kem_prekey is None:
            raise UnknownPrekey(f"prekey message: no KEM prekey with id {message.kem_prekey_id}")
    agreement = x3dh.respond(
        identity=identity,
        signed_prekey=signed_prekey,
        one_time_prekey=one_time_prekey,
        initiator_identity_key=message.identity_key,
        base_key=message.base_key,
        signed_prekey_id=message.signed_prekey_id,
        one_time_prekey_id=message.one_time_prekey_id,
        kem_prekey=kem_prekey,
        kem_ciphertext=message.kem_ciphertext,
    )
    session = Session(
        role="responder",
        local_identity_key=identity.public,
        remote_identity_key=message.identity_key,
        base_key=message.base_key,
        root_key=agreement.shared_secret,
        dh_self=signed_prekey,
        dh_remote=None,
        send_chain_key=None,
        recv_chain_key=None,
        version=agreement.version,
        binding=agreement.binding,
        kem=None if agreement.version == 1 else KemState(),
    )
    plaintext = session.decrypt_ratchet_message(message.message, rng, encapsulate)
    return InboundSession(
        session=session,
        plaintext=plaintext,
        base_key=message.base_key,
        one_time_prekey_id=message.one_time_prekey_id,
        one_time_kem_prekey_id=None
        if kem_prekey is None or kem_prekey.last_resort
        else kem_prekey.id,
    )
