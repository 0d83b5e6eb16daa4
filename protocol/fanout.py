"""Client fan-out: one content encrypted for many devices (docs/protocol.md section 9)."""

from __future__ import annotations

from collections.abc import Mapping

from protocol.encoding import utf8_encode
from protocol.ratchet import Session
from protocol.rng import Rng


def encrypt_for_devices(
    content: bytes, sessions: Mapping[str, Session], rng: Rng
) -> dict[str, bytes]:
    """Encrypt `content` once per session, in ascending device-id order; mutates the sessions."""
    return {
        device_id: sessions[device_id].encrypt(content, rng)
        for device_id in sorted(sessions, key=utf8_encode)
    }
