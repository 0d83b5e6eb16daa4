"""A software WebAuthn platform authenticator (Ed25519, "none" attestation) for tests that
speak the HTTP API without a browser. Browser tests use Chromium's virtual authenticator;
this one lets Python tests and the Python-driven primary produce the same wire responses,
including a downgraded one without user verification."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field

import cbor2
import nacl.signing

from protocol.encoding import b64u_decode, b64u_encode

FLAG_UP, FLAG_UV, FLAG_AT = 0x01, 0x04, 0x40


@dataclass
class _Credential:
    key: nacl.signing.SigningKey
    user_handle: bytes
    sign_count: int = 0


@dataclass
class SoftAuthenticator:
    origin: str
    rp_id: str = "localhost"
    user_verified: bool = True
    credentials: dict[bytes, _Credential] = field(default_factory=dict)

    def _flags(self) -> int:
        return FLAG_UP | (FLAG_UV if self.user_verified else 0)

    def _client_data(self, kind: str, challenge: str) -> bytes:
        return json.dumps(
            {"type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": False}
        ).encode()

    def create(self, options: dict) -> dict:
        key = nacl.signing.SigningKey.generate()
        credential_id = secrets.token_bytes(16)
        self.credentials[credential_id] = _Credential(
            key=key, user_handle=b64u_decode(options["user"]["id"])
        )
        cose = cbor2.dumps({1: 1, 3: -8, -1: 6, -2: bytes(key.verify_key)})
        auth_data = (
            hashlib.sha256(self.rp_id.encode()).digest()
            + bytes([self._flags() | FLAG_AT])
            + (0).to_bytes(4, "big")
            + bytes(16)
            + len(credential_id).to_bytes(2, "big")
            + credential_id
            + cose
        )
        client_data = self._client_data("webauthn.create", options["challenge"])
        return {
            "id": b64u_encode(credential_id),
            "rawId": b64u_encode(credential_id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64u_encode(client_data),
                "attestationObject": b64u_encode(
                    cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
                ),
                "transports": ["internal"],
            },
        }

    def get(self, options: dict) -> dict:
        allowed = [b64u_decode(c["id"]) for c in options.get("allowCredentials") or []]
        candidates = [c for c in self.credentials if not allowed or c in allowed]
        if not candidates:
            raise LookupError("no credential for this relying party")
        credential_id = candidates[0]
        credential = self.credentials[credential_id]
        credential.sign_count += 1
        auth_data = (
            hashlib.sha256(self.rp_id.encode()).digest()
            + bytes([self._flags()])
            + credential.sign_count.to_bytes(4, "big")
        )
        client_data = self._client_data("webauthn.get", options["challenge"])
        signature = credential.key.sign(auth_data + hashlib.sha256(client_data).digest()).signature
        return {
            "id": b64u_encode(credential_id),
            "rawId": b64u_encode(credential_id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64u_encode(client_data),
                "authenticatorData": b64u_encode(auth_data),
                "signature": b64u_encode(signature),
                "userHandle": b64u_encode(credential.user_handle),
            },
        }
