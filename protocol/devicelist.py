"""Account-signed device lists, device and link signatures (docs/protocol.md section 4)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from protocol import primitives
from protocol.encoding import (
    b64u_decode,
    b64u_encode,
    enc_str,
    is_uint,
    label,
    u8,
    u16,
    u64,
    utf8_encode,
)
from protocol.exceptions import (
    AccountKeyChanged,
    DeviceKeyChanged,
    InvalidSignature,
    MalformedDeviceList,
    MalformedMessage,
    MissingDeviceSignature,
    StaleDeviceList,
)
from protocol.keys import IdentityKeyPair

MAX_DEVICES = 5
V1_ONLY = (1,)
MAX_PROTOCOLS = 8
# what a device of this build speaks, in the entries it signs or has signed (section 27.5)
SPOKEN_PROTOCOLS = (1, 2)


@dataclass(frozen=True)
class DeviceEntry:
    device_id: str
    identity_key: bytes
    added_at: int
    device_signature: bytes | None = None
    protocols: tuple[int, ...] = V1_ONLY  # the versions the device speaks (section 27.5)

    @property
    def speaks_v2(self) -> bool:
        return 2 in self.protocols


@dataclass(frozen=True)
class DeviceList:
    account_id: str
    account_key: bytes
    version: int
    timestamp: int
    devices: tuple[DeviceEntry, ...]
    signature: bytes = b""

    def to_dict(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "account_key": b64u_encode(self.account_key),
            "version": self.version,
            "timestamp": self.timestamp,
            "devices": [
                {
                    "device_id": d.device_id,
                    "identity_key": b64u_encode(d.identity_key),
                    "added_at": d.added_at,
                    "device_signature": None
                    if d.device_signature is None
                    else b64u_encode(d.device_signature),
                    **({} if d.protocols == V1_ONLY else {"protocols": list(d.protocols)}),
                }
                for d in self.devices
            ],
            "signature": b64u_encode(self.signature),
        }

    @classmethod
    def from_dict(cls, data: Any) -> DeviceList:
        """Parse the JSON form; any structural problem is MalformedDeviceList."""
        try:
            return cls(
                account_id=_string(data["account_id"], "account_id"),
                account_key=_b64(data["account_key"], 32, "account_key"),
                version=_integer(data["version"], "version"),
                timestamp=_integer(data["timestamp"], "timestamp"),
                devices=tuple(
                    DeviceEntry(
                        device_id=_string(d["device_id"], "device_id"),
                        identity_key=_b64(d["identity_key"], 32, "identity_key"),
                        added_at=_integer(d["added_at"], "added_at"),
                        device_signature=None
                        if d["device_signature"] is None
                        else _b64(d["device_signature"], 64, "device_signature"),
                        protocols=_protocols(d),
                    )
                    for d in _list(data["devices"])
                ),
                signature=_b64(data["signature"], 64, "signature"),
            )
        except (KeyError, TypeError) as exc:
            raise MalformedDeviceList(f"device list: missing or mistyped field {exc}") from exc

    @property
    def hash(self) -> bytes:
        return device_list_hash(self)

    def entry(self, device_id: str) -> DeviceEntry | None:
        return next((d for d in self.devices if d.device_id == device_id), None)


def _protocols(entry: Any) -> tuple[int, ...]:
    """An entry's `protocols`: absent for version 1 only (never written as [1])."""
    if "protocols" not in entry:
        return V1_ONLY
    value = entry["protocols"]
    if not isinstance(value, list) or tuple(value) == V1_ONLY or not _valid_protocols(tuple(value)):
        raise MalformedDeviceList(PROTOCOLS_RULE)
    return tuple(value)


PROTOCOLS_RULE = (
    "device list protocols: expected 2 to 8 versions in 1..255, ascending, with 1 "
    "(an entry of version 1 only has no protocols)"
)


def _valid_protocols(value: Any) -> bool:
    """(1,), or 2 to MAX_PROTOCOLS versions in 1..255, ascending, beginning with 1."""
    if value == V1_ONLY:
        return True
    return (
        isinstance(value, tuple)
        and 2 <= len(value) <= MAX_PROTOCOLS
        and all(is_uint(v, 255) and v > 0 for v in value)
        and list(value) == sorted(set(value))
        and value[0] == 1
    )


def _string(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise MalformedDeviceList(f"device list {what}: expected a string")
    return value


def _integer(value: Any, what: str) -> int:
    if not is_uint(value):
        raise MalformedDeviceList(f"device list {what}: expected an integer in 0..2^53-1")
    return value


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise MalformedDeviceList("device list devices: expected a list")
    return value


def _b64(value: Any, length: int, what: str) -> bytes:
    try:
        return b64u_decode(value, length=length, what=f"device list {what}")
    except MalformedMessage as exc:
        raise MalformedDeviceList(str(exc)) from exc


def device_list_bytes(device_list: DeviceList) -> bytes:
    """The canonical bytes the account key signs (section 4.2)."""
    _check_structure(device_list)
    v2 = any(d.protocols != V1_ONLY for d in device_list.devices)
    out = [
        label("Parley v2 device list" if v2 else "Parley v1 device list"),
        enc_str(device_list.account_id),
        device_list.account_key,
        u64(device_list.version),
        u64(device_list.timestamp),
        u16(len(device_list.devices)),
    ]
    for d in device_list.devices:
        out += [enc_str(d.device_id), d.identity_key, u64(d.added_at)]
        out.append(u8(0) if d.device_signature is None else u8(1) + d.device_signature)
        if v2:
            out.append(_protocol_bytes(d.protocols))
    return b"".join(out)


def _protocol_bytes(protocols: tuple[int, ...]) -> bytes:
    return u8(len(protocols)) + bytes(protocols)


def device_list_hash(device_list: DeviceList) -> bytes:
    return primitives.hash32("Parley v1 device list hash", device_list_bytes(device_list))


def device_signature_bytes(
    account_id: str,
    account_key: bytes,
    identity_key: bytes,
    protocols: tuple[int, ...] = V1_ONLY,
) -> bytes:
    """Version 1 only: section 4.2's bytes; else the versions join them (section 27.5)."""
    if protocols == V1_ONLY:
        return (
            label("Parley v1 device signature") + enc_str(account_id) + account_key + identity_key
        )
    return (
        label("Parley v2 device signature")
        + enc_str(account_id)
        + account_key
        + identity_key
        + _protocol_bytes(protocols)
    )


def link_signature_bytes(account_id: str, companion_identity_key: bytes, link_id: str) -> bytes:
    return (
        label("Parley v1 link signature")
        + enc_str(account_id)
        + companion_identity_key
        + enc_str(link_id)
    )


def sign_device(
    companion: IdentityKeyPair,
    *,
    account_id: str,
    account_key: bytes,
    protocols: tuple[int, ...] = V1_ONLY,
) -> bytes:
    """The companion's device signature over (account id ‖ account key ‖ own identity key
    [‖ the versions it speaks, section 27.5])."""
    return companion.sign(
        device_signature_bytes(account_id, account_key, companion.public, protocols)
    )


def verify_device_signature(
    signature: bytes,
    *,
    account_id: str,
    account_key: bytes,
    identity_key: bytes,
    protocols: tuple[int, ...] = V1_ONLY,
) -> None:
    primitives.ed25519_verify(
        identity_key,
        device_signature_bytes(account_id, account_key, identity_key, protocols),
        signature,
        what="device signature",
    )


def device_signature_protocols(
    signature: bytes, *, account_id: str, account_key: bytes, identity_key: bytes
) -> tuple[int, ...]:
    """The versions a companion's device signature says it speaks, for the primary that puts
    it in its entry (section 27.5): SPOKEN_PROTOCOLS if it covers them, else version 1 only if
    it is the version-1 signature; InvalidSignature otherwise. Only the companion can sign
    either, so a server that swapped one for the other would need its key."""
    for protocols in (SPOKEN_PROTOCOLS, V1_ONLY):
        try:
            verify_device_signature(
                signature,
                account_id=account_id,
                account_key=account_key,
                identity_key=identity_key,
                protocols=protocols,
            )
        except InvalidSignature:
            continue
        return protocols
    raise InvalidSignature("device signature: it verifies for no version this device knows")


def sign_link(
    account: IdentityKeyPair, *, account_id: str, companion_identity_key: bytes, link_id: str
) -> bytes:
    """The account's link-time signature over (account id ‖ companion key ‖ link id)."""
    return account.sign(link_signature_bytes(account_id, companion_identity_key, link_id))


def verify_link_signature(
    signature: bytes,
    *,
    account_id: str,
    account_key: bytes,
    companion_identity_key: bytes,
    link_id: str,
) -> None:
    primitives.ed25519_verify(
        account_key,
        link_signature_bytes(account_id, companion_identity_key, link_id),
        signature,
        what="link signature",
    )


def sign_device_list(
    account: IdentityKeyPair,
    *,
    account_id: str,
    version: int,
    timestamp: int,
    devices: tuple[DeviceEntry, ...] | list[DeviceEntry],
) -> DeviceList:
    """Build and sign a list; entries are sorted by device id here."""
    unsigned = DeviceList(
        account_id=account_id,
        account_key=account.public,
        version=version,
        timestamp=timestamp,
        devices=tuple(sorted(devices, key=lambda d: _device_id_bytes(d.device_id))),
    )
    return replace(unsigned, signature=account.sign(device_list_bytes(unsigned)))


def _str_bytes(value: Any, what: str) -> bytes:
    """UTF-8 of a `str` field: a string without lone surrogates, at most 65535 bytes."""
    raw = utf8_encode(value, error=MalformedDeviceList)
    if len(raw) > 0xFFFF:
        raise MalformedDeviceList(f"expected {what} of at most 65535 bytes, got {len(raw)}")
    return raw


def _device_id_bytes(device_id: Any) -> bytes:
    return _str_bytes(device_id, "a device id")


def _is_bytes(value: Any, length: int) -> bool:
    return isinstance(value, bytes) and len(value) == length


def _check_structure(device_list: DeviceList) -> None:
    """Section 4.3 step 1: every field has its type and size, so list_bytes cannot fail."""
    devices = device_list.devices
    if not isinstance(devices, (tuple, list)) or not 1 <= len(devices) <= MAX_DEVICES:
        got = len(devices) if isinstance(devices, (tuple, list)) else type(devices).__name__
        raise MalformedDeviceList(f"expected 1 to {MAX_DEVICES} devices, got {got}")
    _str_bytes(device_list.account_id, "an account id")
    if not _is_bytes(device_list.account_key, 32):
        raise MalformedDeviceList("expected a 32-byte account key")
    for value, what in ((device_list.version, "version"), (device_list.timestamp, "timestamp")):
        if not is_uint(value):
            raise MalformedDeviceList(f"expected {what} to be an integer in 0..2^53-1")
    for d in devices:
        if not isinstance(d, DeviceEntry):
            raise MalformedDeviceList(f"expected device entries, got {type(d).__name__}")
        if not is_uint(d.added_at):
            raise MalformedDeviceList("expected added_at to be an integer in 0..2^53-1")
        if d.device_signature is not None and not _is_bytes(d.device_signature, 64):
            raise MalformedDeviceList("expected a 64-byte device signature or none")
        if not _valid_protocols(d.protocols):
            raise MalformedDeviceList(PROTOCOLS_RULE)
    ids = [_device_id_bytes(d.device_id) for d in devices]
    if ids != sorted(ids) or len(set(ids)) != len(ids):
        raise MalformedDeviceList("expected device ids unique and sorted by their UTF-8 bytes")
    keys = [d.identity_key for d in devices]
    if any(not _is_bytes(k, 32) for k in keys) or len(set(keys)) != len(keys):
        raise MalformedDeviceList("expected unique 32-byte identity keys")
    primaries = [d for d in devices if d.identity_key == device_list.account_key]
    if len(primaries) != 1:
        raise MalformedDeviceList(f"expected exactly one primary entry, got {len(primaries)}")
    if primaries[0].device_signature is not None:
        raise MalformedDeviceList("expected no device signature on the primary entry")


def verify_device_list(
    device_list: DeviceList,
    *,
    expected_account_key: bytes | None = None,
    last_accepted_version: int | None = None,
    known_devices: Mapping[str, bytes] | None = None,
) -> None:
    """Apply the checks of section 4.3 in order; the first failure raises its error.

    `known_devices` maps every device id ever accepted for this account to its identity key.
    """
    list_bytes = device_list_bytes(device_list)
    if expected_account_key is not None and device_list.account_key != expected_account_key:
        raise AccountKeyChanged(
            f"device list of account {device_list.account_id!r}: account key differs from the expected key"
        )
    primitives.ed25519_verify(
        device_list.account_key, list_bytes, device_list.signature, what="device list signature"
    )
    for d in device_list.devices:
        if d.identity_key == device_list.account_key:
            continue
        if d.device_signature is None:
            raise MissingDeviceSignature(
                f"device {d.device_id!r}: expected a device signature, got none"
            )
        primitives.ed25519_verify(
            d.identity_key,
            device_signature_bytes(
                device_list.account_id, device_list.account_key, d.identity_key, d.protocols
            ),
            d.device_signature,
            what=f"device signature of {d.device_id!r}",
        )
    if last_accepted_version is not None and device_list.version <= last_accepted_version:
        raise StaleDeviceList(
            f"device list version: expected greater than {last_accepted_version}, got {device_list.version}"
        )
    for d in device_list.devices:
        known = (known_devices or {}).get(d.device_id)
        if known is not None and known != d.identity_key:
            raise DeviceKeyChanged(
                f"device {d.device_id!r}: identity key differs from the one accepted before"
            )
