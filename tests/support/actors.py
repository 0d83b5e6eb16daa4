"""Devices driven from Python over the HTTP API, built on protocol/: a primary that signs up
and approves links with a software passkey, and a companion that links itself.

The transport is any object with `get(path)` and `post(path, body)` returning
`(status, json)`: Django's test client in-process, or real HTTP against a live server.
"""

from __future__ import annotations

import functools
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.test import Client

from client.api import ApiError
from client.http import HttpTransport
from client.linking import CompanionLink, prekey_upload
from protocol import devicelist as dl
from protocol import linking
from protocol.encoding import b64u_decode, b64u_encode
from protocol.keys import (
    DeviceKeys,
    IdentityKeyPair,
    X25519KeyPair,
    generate_device_keys,
    kem_prekey_bytes,
)
from protocol.linking import LinkCode, link_url, parse_link_url
from protocol.primitives import mlkem768_public
from protocol.rng import system_rng
from tests.support.softauthn import SoftAuthenticator


class Transport(Protocol):
    def get(self, path: str) -> tuple[int, Any]: ...
    def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]: ...


class DjangoTransport:
    """Django's test client as one device's browser (its own cookie jar)."""

    def __init__(self) -> None:
        self.client = Client()

    def get(self, path: str) -> tuple[int, Any]:
        response = self.client.get(path)
        return response.status_code, response.json()

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        response = self.client.post(path, body, content_type="application/json")
        return response.status_code, response.json()


class ApiFailure(AssertionError):
    def __init__(self, status: int, body: Any):
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body
        self.code = (body or {}).get("error", {}).get("code") if isinstance(body, dict) else None


def ok(result: tuple[int, Any]) -> Any:
    status, body = result
    if status != 200:
        raise ApiFailure(status, body)
    return body


def new_device_keys(otp_count: int = 10, *, version_2: bool = True) -> tuple[str, DeviceKeys]:
    """A device's keys; of version 2 (the default), with a last-resort KEM prekey (id 1)."""
    return b64u_encode(secrets.token_bytes(16)), generate_device_keys(
        system_rng,
        signed_prekey_id=1,
        one_time_prekey_ids=range(1, otp_count + 1),
        last_resort_kem_prekey_id=1 if version_2 else None,
        kem_prekey_ids=range(2, otp_count + 2) if version_2 else (),
    )


@functools.cache
def kem_public_key(key_id: int) -> bytes:
    """An ML-KEM-768 public key for each id, made once per test process; the server keeps
    public keys only, so tests of it need no seeds."""
    return mlkem768_public(system_rng(64))


def kem_prekey_dict(
    identity: IdentityKeyPair,
    key_id: int,
    *,
    last_resort: bool = False,
    public_key: bytes | None = None,
) -> dict[str, Any]:
    """A KEM prekey as uploaded, signed with its flag (docs/protocol.md 27.1)."""
    public = kem_public_key(key_id) if public_key is None else public_key
    return {
        "id": key_id,
        "public_key": b64u_encode(public),
        "signature": b64u_encode(identity.sign(kem_prekey_bytes(key_id, last_resort, public))),
    }


def kem_prekey_upload(
    identity: IdentityKeyPair, ids: Iterable[int] = (), *, last_resort_id: int | None = None
) -> dict[str, Any]:
    """The KEM fields of a POST /api/prekeys (27.6): one-time ones, and a last-resort one."""
    body: dict[str, Any] = {"kem_prekeys": [kem_prekey_dict(identity, i) for i in ids]}
    if last_resort_id is not None:
        body["last_resort_kem_prekey"] = kem_prekey_dict(identity, last_resort_id, last_resort=True)
    return body


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class LinkQr:
    """What the new device's QR code carries: link id, full identity key, ephemeral key."""

    link_id: str
    identity_key: bytes
    ephemeral_key: bytes

    def url(self, origin: str) -> str:
        return link_url(origin, LinkCode(self.link_id, self.identity_key, self.ephemeral_key))

    @classmethod
    def from_url(cls, url: str, origin: str) -> LinkQr:
        code = parse_link_url(url, origin=origin)
        return cls(code.link_id, code.identity_key, code.ephemeral_key)


@dataclass
class PrimaryActor:
    transport: Transport
    authenticator: SoftAuthenticator
    username: str
    display_name: str = "Test User"
    device_id: str = ""
    keys: DeviceKeys | None = None
    last_list: dl.DeviceList | None = None
    known: dict[str, bytes] = field(default_factory=dict)
    # False: a device of a build before version 2 (no KEM prekey, its entry version 1 only)
    version_2: bool = True

    def sign_up(self) -> PrimaryActor:
        self.device_id, self.keys = new_device_keys(version_2=self.version_2)
        begin = ok(
            self.transport.post(
                "/api/accounts/register/options",
                {"username": self.username, "display_name": self.display_name},
            )
        )
        credential = self.authenticator.create(begin["options"])
        now = now_ms()
        first = dl.sign_device_list(
            self.keys.identity,
            account_id=self.username,
            version=1,
            timestamp=now,
            devices=[
                dl.DeviceEntry(
                    device_id=self.device_id,
                    identity_key=self.keys.identity.public,
                    added_at=now,
                    protocols=dl.SPOKEN_PROTOCOLS if self.version_2 else dl.V1_ONLY,
                )
            ],
        )
        ok(
            self.transport.post(
                "/api/accounts/register",
                {
                    "challenge_id": begin["challenge_id"],
                    "credential": credential,
                    "device": {
                        "device_id": self.device_id,
                        "identity_key": b64u_encode(self.keys.identity.public),
                        "name": "Phone",
                        "platform": "Python",
                    },
                    "device_list": first.to_dict(),
                    **prekey_upload(self.keys),
                },
            )
        )
        self.accept_list(first)
        return self

    def accept_list(self, device_list: dl.DeviceList) -> None:
        dl.verify_device_list(
            device_list,
            expected_account_key=self.keys.identity.public,
            last_accepted_version=None if self.last_list is None else self.last_list.version,
            known_devices=self.known,
        )
        self.last_list = device_list
        self.known.update({d.device_id: d.identity_key for d in device_list.devices})

    def signed_list(self, *, devices: list[dl.DeviceEntry]) -> dl.DeviceList:
        return dl.sign_device_list(
            self.keys.identity,
            account_id=self.username,
            version=self.last_list.version + 1,
            timestamp=now_ms(),
            devices=devices,
        )

    def approve(
        self, qr: LinkQr, *, name: str = "Laptop", send_history: bool = False
    ) -> dict[str, Any]:
        """Passkey-approve a link request and hand over the sealed provisioning payload."""
        begin = ok(self.transport.post(f"/api/link/{qr.link_id}/approve/options", {}))
        expected = linking.link_challenge(
            server_nonce=b64u_decode(begin["server_nonce"]),
            link_id=qr.link_id,
            companion_identity_key=qr.identity_key,
            ephemeral_key=qr.ephemeral_key,
        )
        if b64u_decode(begin["options"]["challenge"]) != expected:
            raise AssertionError("server's approval challenge does not match the QR code")
        provisioning = linking.make_provisioning(
            self.keys.identity,
            account_id=self.username,
            companion_identity_key=qr.identity_key,
            link_id=qr.link_id,
        )
        return ok(
            self.transport.post(
                f"/api/link/{qr.link_id}/approve",
                {
                    "challenge_id": begin["challenge_id"],
                    "credential": self.authenticator.get(begin["options"]),
                    "provisioning": b64u_encode(
                        linking.seal_provisioning(provisioning, qr.ephemeral_key)
                    ),
                    "name": name,
                    "send_history": send_history,
                },
            )
        )

    def complete(self, qr: LinkQr) -> dict[str, Any]:
        """Verify the new device's signature, publish list v+1 with it."""
        detail = ok(self.transport.get(f"/api/link/{qr.link_id}/detail"))
        signature = b64u_decode(detail["device_signature"], length=64)
        protocols = dl.device_signature_protocols(
            signature,
            account_id=self.username,
            account_key=self.keys.identity.public,
            identity_key=qr.identity_key,
        )
        entry = dl.DeviceEntry(
            device_id=detail["device_id"],
            identity_key=qr.identity_key,
            added_at=now_ms(),
            device_signature=signature,
            protocols=protocols,
        )
        new_list = self.signed_list(devices=[*self.last_list.devices, entry])
        result = ok(
            self.transport.post(
                f"/api/link/{qr.link_id}/complete", {"device_list": new_list.to_dict()}
            )
        )
        self.accept_list(new_list)
        return result

    def revoke(self, device_id: str) -> dict[str, Any]:
        new_list = self.signed_list(
            devices=[d for d in self.last_list.devices if d.device_id != device_id]
        )
        result = ok(
            self.transport.post(
                f"/api/devices/{device_id}/revoke", {"device_list": new_list.to_dict()}
            )
        )
        self.accept_list(new_list)
        return result


@dataclass
class CompanionActor:
    """The new device, stepped by the test; the steps are client.linking.CompanionLink's."""

    transport: Transport
    name: str = "Laptop"
    device_id: str = ""
    keys: DeviceKeys | None = None
    ephemeral: X25519KeyPair | None = None
    qr: LinkQr | None = None
    provisioning: linking.Provisioning | None = None
    link: CompanionLink | None = None

    def open_link(self) -> LinkQr:
        self.link = CompanionLink(
            self.transport, name=self.name, platform="Python", one_time_prekeys=10
        )
        request = _as_api_failure(self.link.open)
        self.device_id, self.keys, self.ephemeral = (
            self.link.device_id,
            self.link.keys,
            self.link.ephemeral,
        )
        self.qr = LinkQr(request.link_id, request.identity_key, request.ephemeral_key)
        return self.qr

    def sign(self) -> dict[str, Any]:
        """Open the provisioning payload (it must cover our key and link id), then sign."""
        self.provisioning = self.link.accept_provisioning(_as_api_failure(self.link.status))
        return _as_api_failure(self.link.sign)

    def redeem(self) -> dict[str, Any]:
        return _as_api_failure(self.link.redeem)


def _as_api_failure(step: Callable[[], Any]) -> Any:
    try:
        return step()
    except ApiError as error:
        raise ApiFailure(error.status, error.body) from error


def link(
    primary: PrimaryActor, companion: CompanionActor, *, name: str = "Laptop"
) -> CompanionActor:
    """The whole two-phase link, in the order of DESIGN §4."""
    qr = companion.open_link()
    primary.approve(qr, name=name)
    companion.sign()
    primary.complete(qr)
    companion.redeem()
    return companion


def person(live_app: Any, name: str, *, version_2: bool = True) -> PrimaryActor:
    """A fresh account on the live server, signed up with a software passkey; `version_2`
    False: its device is of a build before version-2 sessions (docs/protocol.md 27)."""
    return PrimaryActor(
        HttpTransport(live_app.url),
        SoftAuthenticator(origin=live_app.url),
        username=f"{name}{secrets.token_hex(3)}",
        version_2=version_2,
    ).sign_up()
