"""Bob's side of starting a session: accepting the first prekey message from a device
(docs/protocol.md section 7.1)."""

from __future__ import annotations

from collections.abc import Container, Mapping
from dataclasses import dataclass

from protocol import x3dh
from protocol.exceptions import ReplayDetected, UnknownPrekey, UnknownSession, UntrustedIdentity
from protocol.keys import IdentityKeyPair, X25519KeyPair
from protocol.message import PrekeyMessage, decode_message
from protocol.ratchet import Session
from protocol.rng import Rng


@dataclass(frozen=True)
class InboundSession:
    """Result of accepting a prekey message. The caller then records `base_key` as used,
    deletes one-time prekey `one_time_prekey_id` and stores `session`."""

    session: Session
    plaintext: bytes
    base_key: bytes
    one_time_prekey_id: int | None


def accept_prekey_message(
    data: bytes,
    *,
    identity: IdentityKeyPair,
    signed_prekeys: Mapping[int, X25519KeyPair],
    one_time_prekeys: Mapping[int, X25519KeyPair],
    sender_identity_key: bytes,
    used_base_keys: Container[bytes],
    rng: Rng,
) -> InboundSession:
    """Start a responder session from a prekey message (section 7.1, step 2).

    `sender_identity_key` comes from the sender's verified device list. Nothing is consumed
    here: on success the caller records the base key and deletes the one-time prekey.
    """
    message = decode_message(data)
    if not isinstance(message, PrekeyMessage):
        raise UnknownSession(
            "message: expected a prekey message to start a session, got a ratchet message"
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
    agreement = x3dh.respond(
        identity=identity,
        signed_prekey=signed_prekey,
        one_time_prekey=one_time_prekey,
        initiator_identity_key=message.identity_key,
        base_key=message.base_key,
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
    )
    plaintext = session.decrypt_ratchet_message(message.message, rng)
    return InboundSession(
        session=session,
        plaintext=plaintext,
        base_key=message.base_key,
        one_time_prekey_id=message.one_time_prekey_id,
    )
