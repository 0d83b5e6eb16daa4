"""Signatures and payloads around device linking (docs/protocol.md section 13)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from protocol import primitives
from protocol.devicelist import sign_link, verify_link_signature
from protocol.encoding import b64u_decode, b64u_encode, enc_str, label
from protocol.exceptions import InvalidKey, MalformedMessage
from protocol.keys import IdentityKeyPair, X25519KeyPair
from protocol.strictjson import canonical_json, parse_canonical_json


def _bytes32(value: bytes, what: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != 32:
        got = len(value) if isinstance(value, bytes) else type(value).__name__
        raise InvalidKey(f"{what}: expected 32 bytes, got {got}")
    return value


def _nonce(nonce: bytes) -> bytes:
    return _bytes32(nonce, "nonce")


def link_challenge(
    *, server_nonce: bytes, link_id: str, companion_identity_key: bytes, ephemeral_key: bytes
) -> bytes:
    """The WebAuthn challenge that binds the approval to this link and both new keys."""
    return primitives.hash32(
        "Parley v1 link challenge",
        _nonce(server_nonce)
        + enc_str(link_id)
        + _bytes32(companion_identity_key, "companion identity key")
        + _bytes32(ephemeral_key, "ephemeral key"),
    )


@dataclass(frozen=True)
class Provisioning:
    """What the primary seals to the companion's ephemeral key (public data only)."""

    account_id: str
    account_key: bytes
    link_id: str
    link_signature: bytes


def make_provisioning(
    account: IdentityKeyPair, *, account_id: str, companion_identity_key: bytes, link_id: str
) -> Provisioning:
    return Provisioning(
        account_id=account_id,
        account_key=account.public,
        link_id=link_id,
        link_signature=sign_link(
            account,
            account_id=account_id,
            companion_identity_key=companion_identity_key,
            link_id=link_id,
        ),
    )


def provisioning_payload(provisioning: Provisioning) -> bytes:
    """The canonical JSON that is sealed (section 13)."""
    return canonical_json(
        {
            "account_id": provisioning.account_id,
            "account_key": b64u_encode(provisioning.account_key),
            "link_id": provisioning.link_id,
            "link_signature": b64u_encode(provisioning.link_signature),
        }
    )


def seal_provisioning(provisioning: Provisioning, ephemeral_public_key: bytes) -> bytes:
    return primitives.sealed_box(provisioning_payload(provisioning), ephemeral_public_key)


def open_provisioning(
    sealed: bytes, *, ephemeral: X25519KeyPair, own_identity_key: bytes, link_id: str
) -> Provisioning:
    """Open and check that the account signed exactly our identity key and this link id."""
    data = parse_canonical_json(
        primitives.sealed_box_open(sealed, ephemeral.public, ephemeral.private)
    )
    if not isinstance(data, dict) or set(data) != {
        "account_id",
        "account_key",
        "link_id",
        "link_signature",
    }:
        raise MalformedMessage(
            "provisioning: expected account_id, account_key, link_id, link_signature"
        )
    if not isinstance(data["account_id"], str) or data["link_id"] != link_id:
        raise MalformedMessage("provisioning: expected our own link id and a string account id")
    provisioning = Provisioning(
        account_id=data["account_id"],
        account_key=b64u_decode(data["account_key"], length=32, what="account_key"),
        link_id=link_id,
        link_signature=b64u_decode(data["link_signature"], length=64, what="link_signature"),
    )
    verify_link_signature(
        provisioning.link_signature,
        account_id=provisioning.account_id,
        account_key=provisioning.account_key,
        companion_identity_key=own_identity_key,
        link_id=link_id,
    )
    return provisioning


def link_token_bytes(nonce: bytes, link_id: str) -> bytes:
    return label("Parley v1 link token") + _nonce(nonce) + enc_str(link_id)


def sign_link_token(companion: IdentityKeyPair, *, nonce: bytes, link_id: str) -> bytes:
    return companion.sign(link_token_bytes(nonce, link_id))


def verify_link_token(signature: bytes, *, identity_key: bytes, nonce: bytes, link_id: str) -> None:
    primitives.ed25519_verify(
        identity_key, link_token_bytes(nonce, link_id), signature, what="link token signature"
    )


def sign_in_bytes(origin: str, device_id: str, nonce: bytes) -> bytes:
    return label("Parley v1 sign-in") + enc_str(origin) + enc_str(device_id) + _nonce(nonce)


def sign_in(device: IdentityKeyPair, *, origin: str, device_id: str, nonce: bytes) -> bytes:
    return device.sign(sign_in_bytes(origin, device_id, nonce))


def verify_sign_in(
    signature: bytes, *, identity_key: bytes, origin: str, device_id: str, nonce: bytes
) -> None:
    primitives.ed25519_verify(
        identity_key, sign_in_bytes(origin, device_id, nonce), signature, what="sign-in signature"
    )


def link_check_code(*, link_id: str, companion_identity_key: bytes, ephemeral_key: bytes) -> str:
    """Six digits both sides compute from their own copy of the QR data (section 13)."""
    digest = primitives.hash32(
        "Parley v1 link check code",
        enc_str(link_id)
        + _bytes32(companion_identity_key, "companion identity key")
        + _bytes32(ephemeral_key, "ephemeral key"),
    )
    return f"{int.from_bytes(digest[:4], 'big') % 1_000_000:06d}"


# ---------------------------------------------------------------- the link URL (QR code)

LINK_PATH = "/link/approve"
_LINK_FRAGMENT = re.compile(r"v1\.([A-Za-z0-9_-]{1,64})\.([A-Za-z0-9_-]{43})\.([A-Za-z0-9_-]{43})")


@dataclass(frozen=True)
class LinkCode:
    """What a new device's QR code carries: its link id, identity key and ephemeral key."""

    link_id: str
    identity_key: bytes
    ephemeral_key: bytes


def link_url(origin: str, code: LinkCode) -> str:
    """The approval page's URL; the fragment (never sent to a server) carries the keys."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", code.link_id):
        raise MalformedMessage("link id: expected 1 to 64 base64url characters")
    identity_key = _bytes32(code.identity_key, "identity key")
    ephemeral_key = _bytes32(code.ephemeral_key, "ephemeral key")
    return (
        f"{origin}{LINK_PATH}#v1.{code.link_id}"
        f".{b64u_encode(identity_key)}.{b64u_encode(ephemeral_key)}"
    )


def parse_link_url(url: str, *, origin: str) -> LinkCode:
    """The link code of a URL `link_url(origin, ...)` made; anything else (another site,
    another version, a key of another length or non-canonical base64url) is MalformedMessage."""
    prefix = f"{origin}{LINK_PATH}#"
    if not isinstance(url, str) or not url.startswith(prefix):
        raise MalformedMessage(f"link URL: expected one starting with {prefix!r}")
    match = _LINK_FRAGMENT.fullmatch(url.removeprefix(prefix))
    if match is None:
        raise MalformedMessage("link URL: expected the fragment v1.<link id>.<key>.<key>")
    return LinkCode(
        link_id=match[1],
        identity_key=b64u_decode(match[2], length=32, what="link URL identity key"),
        ephemeral_key=b64u_decode(match[3], length=32, what="link URL ephemeral key"),
    )
