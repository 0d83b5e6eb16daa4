"""Typed, validated inputs of the devices API (key uploads, device lists, link sessions)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from protocol.devicelist import DeviceList
from protocol.exceptions import ProtocolError
from web import validation as v
from web.validation import InvalidInput

DEVICE_ID_PATTERN = r"[A-Za-z0-9_-]{16,32}"
MAX_ONE_TIME_PREKEYS = 200
MAX_DEVICE_NAME = 64


@dataclass(frozen=True)
class SignedPrekeyIn:
    key_id: int
    public_key: bytes
    signature: bytes


@dataclass(frozen=True)
class OneTimePrekeyIn:
    key_id: int
    public_key: bytes


@dataclass(frozen=True)
class KemPrekeyIn:
    """A KEM prekey as uploaded (docs/protocol.md 27.6); its key and signature are checked by
    devices.prekeys (whether it is a one-time or the last-resort one is where it came)."""

    key_id: int
    public_key: bytes
    signature: bytes


@dataclass(frozen=True)
class NewDevice:
    device_id: str
    identity_key: bytes
    name: str
    platform: str


def signed_prekey(data: dict[str, Any], key: str = "signed_prekey") -> SignedPrekeyIn:
    spk = v.obj(data, key)
    return SignedPrekeyIn(
        key_id=v.integer(spk, "id", maximum=2**32 - 1),
        public_key=v.binary(spk, "public_key", length=32),
        signature=v.binary(spk, "signature", length=64),
    )


def one_time_prekeys(data: dict[str, Any], key: str = "one_time_prekeys") -> list[OneTimePrekeyIn]:
    items = v.array(data, key, max_items=MAX_ONE_TIME_PREKEYS)
    keys = []
    for item in items:
        if not isinstance(item, dict):
            raise InvalidInput(
                f"'{key}' must hold objects with 'id' and 'public_key'.", data={"field": key}
            )
        keys.append(
            OneTimePrekeyIn(
                key_id=v.integer(item, "id", maximum=2**32 - 1),
                public_key=v.binary(item, "public_key", length=32),
            )
        )
    if len({k.key_id for k in keys}) != len(keys):
        raise InvalidInput(f"'{key}' has repeated ids.", data={"field": key})
    return keys


def _kem_prekey(item: Any, key: str) -> KemPrekeyIn:
    if not isinstance(item, dict):
        raise InvalidInput(
            f"'{key}' must hold objects with 'id', 'public_key' and 'signature'.",
            data={"field": key},
        )
    return KemPrekeyIn(
        key_id=v.integer(item, "id", maximum=2**32 - 1),
        # any length here: one that is not an ML-KEM-768 key's is `invalid_key`, like a key
        # that is not a valid encoding (devices.prekeys)
        public_key=v.binary(item, "public_key"),
        signature=v.binary(item, "signature", length=64),
    )


def kem_prekeys(data: dict[str, Any], key: str = "kem_prekeys") -> list[KemPrekeyIn]:
    """The one-time KEM prekeys of an upload: none when absent, at most
    PARLEY_KEM_PREKEYS_PER_UPLOAD (else 400 `too_many_in_upload`), ids distinct."""
    if data.get(key) is None:
        return []
    items = v.array(data, key, max_items=v.MAX_BODY_BYTES)
    limit = settings.PARLEY_KEM_PREKEYS_PER_UPLOAD
    if len(items) > limit:
        raise InvalidInput(
            f"At most {limit} one-time KEM prekeys a request; send the others in another.",
            code="too_many_in_upload",
            data={"field": key, "limit": limit},
        )
    keys = [_kem_prekey(item, key) for item in items]
    if len({k.key_id for k in keys}) != len(keys):
        raise InvalidInput(f"'{key}' has repeated ids.", data={"field": key})
    return keys


def last_resort_kem_prekey(
    data: dict[str, Any], key: str = "last_resort_kem_prekey"
) -> KemPrekeyIn | None:
    if data.get(key) is None:
        return None
    return _kem_prekey(v.obj(data, key), key)


def device_name(data: dict[str, Any], key: str = "name") -> str:
    return v.string(data, key, max_length=MAX_DEVICE_NAME)


def new_device(data: dict[str, Any]) -> NewDevice:
    return NewDevice(
        device_id=v.string(
            data, "device_id", max_length=32, min_length=16, pattern=DEVICE_ID_PATTERN
        ),
        identity_key=v.binary(data, "identity_key", length=32),
        name=device_name(data),
        platform=v.optional_string(data, "platform", max_length=128),
    )


def device_list(data: dict[str, Any], key: str = "device_list") -> DeviceList:
    try:
        return DeviceList.from_dict(v.obj(data, key))
    except ProtocolError as error:
        raise InvalidInput(
            f"'{key}': {error}", code="malformed_device_list", data={"field": key}
        ) from None


@dataclass(frozen=True)
class NewPrimary:
    """A browser becoming an account's primary: its keys and the list it signed."""

    device: NewDevice
    signed_prekey: SignedPrekeyIn
    one_time_prekeys: list[OneTimePrekeyIn]
    device_list: DeviceList
    # version 2 (docs/protocol.md 27.6): so that its bundle has a KEM prekey from the start
    last_resort_kem_prekey: KemPrekeyIn | None = None
    kem_prekeys: list[KemPrekeyIn] = field(default_factory=list)


def new_primary(data: dict[str, Any]) -> NewPrimary:
    return NewPrimary(
        device=new_device(v.obj(data, "device")),
        signed_prekey=signed_prekey(data),
        one_time_prekeys=one_time_prekeys(data),
        device_list=device_list(data),
        last_resort_kem_prekey=last_resort_kem_prekey(data),
        kem_prekeys=kem_prekeys(data),
    )
