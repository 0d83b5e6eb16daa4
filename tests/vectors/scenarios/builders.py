"""Keys, signed lists and the JSON shapes the scenario files are written in (generate.py).

Every key comes from a TestRng stream over a fixed seed, so two runs give identical files.
"""

from __future__ import annotations

from typing import Any

from protocol import primitives
from protocol.content import ContentType
from protocol.devicelist import DeviceEntry, DeviceList, sign_device, sign_device_list
from protocol.encoding import b64u_encode
from protocol.keys import IdentityKeyPair, generate_identity
from protocol.rng import TestRng

T0 = 1_700_000_000_000
MAX_AGE = 5 * 60 * 1000


def seed(name: str) -> bytes:
    """seed(name) = H("Parley v1 test seed", UTF-8 name), as tests/vectors/generate.py."""
    return primitives.hash32("Parley v1 test seed", name.encode("utf-8"))


def identity(name: str) -> IdentityKeyPair:
    return generate_identity(TestRng(seed(f"scenario {name}")))


ALICE, ALICE_LAPTOP = identity("alice phone"), identity("alice laptop")
BOB, BOB_LAPTOP = identity("bob phone"), identity("bob laptop")
BOB_TABLET, INTRUDER, IMPOSTOR = identity("bob tablet"), identity("intruder"), identity("impostor")
SEEDS = {
    "alice-phone": "scenario alice phone",
    "alice-laptop": "scenario alice laptop",
    "bob-phone": "scenario bob phone",
    "bob-laptop": "scenario bob laptop",
    "bob-tablet": "scenario bob tablet",
    "intruder": "scenario intruder",
    "impostor": "scenario impostor",
}


def entry(
    account: str, device_id: str, key: IdentityKeyPair, primary: IdentityKeyPair
) -> DeviceEntry:
    if key is primary:
        return DeviceEntry(device_id, key.public, T0)
    return DeviceEntry(
        device_id,
        key.public,
        T0 + 1,
        sign_device(key, account_id=account, account_key=primary.public),
    )


def signed(
    account: str, primary: IdentityKeyPair, version: int, devices: dict[str, IdentityKeyPair]
) -> DeviceList:
    return sign_device_list(
        primary,
        account_id=account,
        version=version,
        timestamp=T0 + version,
        devices=[entry(account, d, k, primary) for d, k in devices.items()],
    )


ALICE_V2 = signed("alice", ALICE, 2, {"alice-phone": ALICE, "alice-laptop": ALICE_LAPTOP})
ALICE_V3 = signed("alice", ALICE, 3, {"alice-phone": ALICE})
BOB_V1 = signed("bob", BOB, 1, {"bob-phone": BOB})
BOB_V2 = signed("bob", BOB, 2, {"bob-phone": BOB, "bob-laptop": BOB_LAPTOP})
BOB_V3_TABLET = signed("bob", BOB, 3, {"bob-phone": BOB, "bob-tablet": BOB_TABLET})


def b64(data: bytes) -> str:
    return b64u_encode(data)


def record(
    device_list: DeviceList,
    *,
    checked_at: int,
    known: tuple[DeviceList, ...] = (),
    suspended: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A ListRecord's JSON: `known` are the lists accepted before this one."""
    known_devices = {}
    for older in (*known, device_list):
        known_devices.update({d.device_id: b64(d.identity_key) for d in older.devices})
    return {
        "device_list": device_list.to_dict(),
        "account_key": b64(device_list.account_key),
        "known_devices": known_devices,
        "suspended": sorted(suspended),
        "checked_at": checked_at,
    }


def state(lists: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Alice's phone: the own account's primary."""
    return {
        "account_id": "alice",
        "device_id": "alice-phone",
        "account_key": b64(ALICE.public),
        "lists": lists,
        "pending": {},
        "next_request": 1,
    }


OWN = {"alice": record(ALICE_V2, checked_at=T0)}


def get(request_id: str, account: str) -> dict[str, Any]:
    path = f"/api/accounts/{account}/device-list"
    return {
        "type": "http_request",
        "request_id": request_id,
        "method": "GET",
        "path": path,
        "body": None,
    }


def answer(
    request_id: str,
    device_list: DeviceList | dict[str, Any],
    now: int,
    suspended: tuple[str, ...] = (),
) -> dict[str, Any]:
    body = device_list if isinstance(device_list, dict) else device_list.to_dict()
    return {
        "type": "http_answered",
        "request_id": request_id,
        "status": 200,
        "body": {"device_list": body, "suspended": list(suspended)},
        "now": now,
    }


def wanted(account: str, now: int, refresh: bool = False) -> dict[str, Any]:
    return {"type": "list_wanted", "account_id": account, "refresh": refresh, "now": now}


def content(
    sender: str,
    device: str,
    kind: ContentType,
    stamp: DeviceList,
    now: int,
    stamp_hash: bytes | None = None,
) -> dict[str, Any]:
    return {
        "type": "content_received",
        "sender": sender,
        "sender_device": device,
        "content_type": int(kind),
        "sender_list_version": stamp.version,
        "sender_list_hash": b64(stamp_hash or stamp.hash),
        "now": now,
    }


def store(account: str, rec: dict[str, Any]) -> dict[str, Any]:
    return {"type": "store_list", "account_id": account, "record": rec}


def notice(account: str, what: str, **data: Any) -> dict[str, Any]:
    return {"type": "notice", "account_id": account, "code": what, "data": data}


def verdict(sender: str, device: str, refuse: bool = False) -> dict[str, Any]:
    return {
        "type": "content_verdict",
        "sender": sender,
        "sender_device": device,
        "verdict": "refuse" if refuse else "accept",
        "reason": "own_devices_only" if refuse else None,
    }


def scenario(
    description: str,
    initial: dict[str, Any],
    steps: list[tuple[str, dict[str, Any], list[dict[str, Any]]]],
) -> dict[str, Any]:
    return {
        "description": description,
        "seeds": SEEDS,
        "state": initial,
        "steps": [{"note": n, "event": e, "effects": fx} for n, e, fx in steps],
    }


BOB_KNOWN = {**OWN, "bob": record(BOB_V2, checked_at=T0, known=(BOB_V1,))}
BOB_V1_KNOWN = {**OWN, "bob": record(BOB_V1, checked_at=T0)}
