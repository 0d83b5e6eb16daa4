"""This device's Django session: check it, and sign back in with the identity key when it
has expired (DESIGN §7: no long-lived tokens; the key is the credential)."""

from __future__ import annotations

from typing import Any

from client import api
from client.api import ApiError, Transport
from client.store import OwnDevice
from protocol import linking
from protocol.encoding import b64u_decode, b64u_encode


class DeviceLoggedOut(Exception):
    """The server no longer accepts this device: it was logged out (revoked)."""


def sign_in(transport: Transport, device: OwnDevice) -> dict[str, Any]:
    """Answer a server nonce with a signature by the identity key (docs/protocol.md 13)."""
    try:
        begin = api.post(transport, "/api/devices/signin/options", {"device_id": device.device_id})
        signature = linking.sign_in(
            device.keys.identity,
            origin=device.server,
            device_id=device.device_id,
            nonce=b64u_decode(begin["nonce"], length=32, what="sign-in nonce"),
        )
        session: dict[str, Any] = api.post(
            transport,
            "/api/devices/signin",
            {
                "challenge_id": begin["challenge_id"],
                "device_id": device.device_id,
                "signature": b64u_encode(signature),
            },
        )
        return session
    except ApiError as error:
        if error.code == "device_revoked":
            raise DeviceLoggedOut(error.message) from error
        raise


def ensure_signed_in(transport: Transport, device: OwnDevice) -> tuple[dict[str, Any], bool]:
    """GET /api/me, signing in again on 401. Returns the answer and whether it signed in."""
    status, body = transport.get("/api/me")
    if status == 200:
        return body, False
    if status != 401:
        raise ApiError(status, body)
    sign_in(transport, device)
    return api.get(transport, "/api/me"), True


def log_out(transport: Transport, device: OwnDevice) -> None:
    """Ask the server to drop this device (a suspension until the primary re-signs the list)."""
    ensure_signed_in(transport, device)
    api.post(transport, f"/api/devices/{device.device_id}/revoke", {})
