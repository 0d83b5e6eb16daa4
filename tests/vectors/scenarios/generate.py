"""Deterministic generator of the device engine's scenario files (docs/protocol.md section 22.5).

Run: .venv/bin/python tests/vectors/scenarios/generate.py   (rewrites tests/vectors/scenarios/*.json)

Keys come from TestRng streams over fixed seeds and lists are signed here, so two runs give
identical files. The expected effects are written out by hand below (this file does not
import the engine): a scenario states the rule, the engines in both languages must meet it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from protocol import primitives  # noqa: E402
from protocol.content import ContentType  # noqa: E402
from protocol.devicelist import (  # noqa: E402
    DeviceEntry,
    DeviceList,
    sign_device,
    sign_device_list,
)
from protocol.encoding import b64u_encode  # noqa: E402
from protocol.keys import IdentityKeyPair, generate_identity  # noqa: E402
from protocol.rng import TestRng  # noqa: E402

SCENARIO_DIR = Path(__file__).resolve().parent
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


# ---------------------------------------------------------------- device lists


def list_accepted() -> dict[str, Any]:
    t1, t2 = T0 + 1000, T0 + 2000
    return scenario(
        "A contact's list: fetched when missing (pinned at first use), used from the cache while fresh, and a newer signed list accepted with a notice of what changed.",
        state(OWN),
        [
            ("no list of bob yet: fetch it", wanted("bob", t1), [get("r1", "bob")]),
            (
                "the served list verifies: store it",
                answer("r1", BOB_V1, t1),
                [store("bob", record(BOB_V1, checked_at=t1))],
            ),
            ("fresh in the cache: nothing to fetch", wanted("bob", t1 + 10), []),
            (
                "a send after mismatched_devices asks for the current list",
                wanted("bob", t2, refresh=True),
                [get("r2", "bob")],
            ),
            (
                "version 2 adds a device: stored, and the change is told",
                answer("r2", BOB_V2, t2, suspended=("bob-laptop",)),
                [
                    store(
                        "bob",
                        record(BOB_V2, checked_at=t2, known=(BOB_V1,), suspended=("bob-laptop",)),
                    ),
                    notice(
                        "bob",
                        "devices_changed",
                        reason="refresh",
                        version=2,
                        added=["bob-laptop"],
                        removed=[],
                    ),
                ],
            ),
            ("an answer to a request never made is ignored", answer("r9", BOB_V2, t2), []),
        ],
    )


BOB_KNOWN = {**OWN, "bob": record(BOB_V2, checked_at=T0, known=(BOB_V1,))}


def list_rollback_refused() -> dict[str, Any]:
    t1 = T0 + 1000
    return scenario(
        "A server serving an older, validly signed list (a rollback) is refused; the list accepted last, served again, is not a rollback.",
        state(BOB_KNOWN),
        [
            ("refresh bob", wanted("bob", t1, refresh=True), [get("r1", "bob")]),
            (
                "version 1 after version 2: refused",
                answer("r1", BOB_V1, t1),
                [notice("bob", "list_refused", reason="refresh", error="StaleDeviceList")],
            ),
            ("refresh bob again", wanted("bob", t1, refresh=True), [get("r2", "bob")]),
            (
                "version 2 again: the same list, checked now",
                answer("r2", BOB_V2, t1),
                [store("bob", record(BOB_V2, checked_at=t1, known=(BOB_V1,)))],
            ),
        ],
    )


def list_key_change_refused() -> dict[str, Any]:
    t1 = T0 + 1000
    impostor_laptop = identity("bob laptop impostor")
    swapped = signed("bob", BOB, 3, {"bob-phone": BOB, "bob-laptop": impostor_laptop})
    removed = signed("bob", BOB, 3, {"bob-phone": BOB})
    back = signed("bob", BOB, 4, {"bob-phone": BOB, "bob-laptop": impostor_laptop})
    return scenario(
        "A known device id with another identity key is refused, even when the account key signed it, and even after the device was removed.",
        state(BOB_KNOWN),
        [
            ("refresh bob", wanted("bob", t1, refresh=True), [get("r1", "bob")]),
            (
                "bob-laptop with a new key: refused",
                answer("r1", swapped, t1),
                [notice("bob", "list_refused", reason="refresh", error="DeviceKeyChanged")],
            ),
            ("refresh bob", wanted("bob", t1, refresh=True), [get("r2", "bob")]),
            (
                "version 3 removes bob-laptop: accepted",
                answer("r2", removed, t1),
                [
                    store("bob", record(removed, checked_at=t1, known=(BOB_V1, BOB_V2))),
                    notice(
                        "bob",
                        "devices_changed",
                        reason="refresh",
                        version=3,
                        added=[],
                        removed=["bob-laptop"],
                    ),
                ],
            ),
            ("refresh bob", wanted("bob", t1, refresh=True), [get("r3", "bob")]),
            (
                "bob-laptop back with another key: refused",
                answer("r3", back, t1),
                [notice("bob", "list_refused", reason="refresh", error="DeviceKeyChanged")],
            ),
        ],
    )


def list_injected_device_refused() -> dict[str, Any]:
    t1 = T0 + 1000
    injected = BOB_V2.to_dict()
    intruder_entry = DeviceEntry(
        "zz-intruder",
        INTRUDER.public,
        T0 + 5,
        sign_device(INTRUDER, account_id="bob", account_key=BOB.public),
    )
    injected["devices"].append(
        DeviceList("bob", BOB.public, 1, 1, (intruder_entry,)).to_dict()["devices"][0]
    )
    injected["version"] = 3
    unsigned = sign_device_list(
        BOB,
        account_id="bob",
        version=3,
        timestamp=T0 + 3,
        devices=[
            entry("bob", "bob-phone", BOB, BOB),
            DeviceEntry("bob-laptop", BOB_LAPTOP.public, T0 + 1),
        ],
    )
    forged = sign_device_list(
        IMPOSTOR,
        account_id="bob",
        version=3,
        timestamp=T0 + 3,
        devices=[DeviceEntry("impostor-phone", IMPOSTOR.public, T0)],
    )
    return scenario(
        "What a server cannot add: a device the account key did not sign, a companion without its own signature, another account key (a contact's security code change), the own list under another key.",
        state(BOB_KNOWN),
        [
            ("refresh bob", wanted("bob", t1, refresh=True), [get("r1", "bob")]),
            (
                "an entry appended after signing: refused",
                answer("r1", injected, t1),
                [notice("bob", "list_refused", reason="refresh", error="InvalidSignature")],
            ),
            ("refresh bob", wanted("bob", t1, refresh=True), [get("r2", "bob")]),
            (
                "a companion entry the account signed but the device did not: refused",
                answer("r2", unsigned, t1),
                [notice("bob", "list_refused", reason="refresh", error="MissingDeviceSignature")],
            ),
            ("refresh bob", wanted("bob", t1, refresh=True), [get("r3", "bob")]),
            (
                "another account key: the security code changed",
                answer("r3", forged, t1),
                [
                    notice(
                        "bob",
                        "security_code_changed",
                        reason="refresh",
                        account_key=b64(IMPOSTOR.public),
                    )
                ],
            ),
            ("refresh the own list", wanted("alice", t1, refresh=True), [get("r4", "alice")]),
            (
                "the own list under another key: refused",
                answer(
                    "r4",
                    sign_device_list(
                        IMPOSTOR,
                        account_id="alice",
                        version=3,
                        timestamp=T0 + 3,
                        devices=[DeviceEntry("alice-phone", IMPOSTOR.public, T0)],
                    ),
                    t1,
                ),
                [notice("alice", "list_refused", reason="refresh", error="AccountKeyChanged")],
            ),
            ("refresh bob", wanted("bob", t1, refresh=True), [get("r5", "bob")]),
            (
                "another account's list: refused",
                answer("r5", BOB_V2.to_dict() | {"account_id": "mallory"}, t1),
                [notice("bob", "list_refused", reason="refresh", error="MalformedDeviceList")],
            ),
            ("refresh bob", wanted("bob", t1, refresh=True), [get("r6", "bob")]),
            (
                "the server fails: the list is unavailable, the cache stays",
                {
                    "type": "http_answered",
                    "request_id": "r6",
                    "status": 503,
                    "body": {"error": {"code": "unavailable", "message": "busy", "data": {}}},
                    "now": t1,
                },
                [
                    notice(
                        "bob", "list_unavailable", reason="refresh", status=503, code="unavailable"
                    )
                ],
            ),
        ],
    )


BOB_V1_KNOWN = {**OWN, "bob": record(BOB_V1, checked_at=T0)}


def list_withheld_flagged() -> dict[str, Any]:
    t1 = T0 + 1000
    return scenario(
        "Freeze detection (section 10.1): a content stamped with a newer list of its sender than the one accepted here makes a fetch; a server still serving the older list is flagged, the same version with another hash is a fork.",
        state(BOB_V1_KNOWN),
        [
            (
                "bob's phone signed with list 2; only 1 is known: fetch",
                content("bob", "bob-phone", ContentType.TEXT, BOB_V2, t1),
                [verdict("bob", "bob-phone"), get("r1", "bob")],
            ),
            (
                "a second content while the fetch is out: no second request",
                content("bob", "bob-phone", ContentType.RECEIPT, BOB_V3_TABLET, t1),
                [verdict("bob", "bob-phone")],
            ),
            (
                "the server still serves version 1: withheld",
                answer("r1", BOB_V1, t1),
                [
                    store("bob", record(BOB_V1, checked_at=t1)),
                    notice("bob", "list_withheld", reason="freeze", claimed=3, served=1),
                ],
            ),
            (
                "a content stamped with version 1 but another hash: a fork",
                content("bob", "bob-phone", ContentType.TEXT, BOB_V1, t1, stamp_hash=BOB_V2.hash),
                [verdict("bob", "bob-phone"), notice("bob", "list_forked", version=1)],
            ),
            (
                "a content stamped with the list accepted here: nothing to do",
                content("bob", "bob-phone", ContentType.TEXT, BOB_V1, t1),
                [verdict("bob", "bob-phone")],
            ),
            (
                "stamped with list 2 again: fetch",
                content("bob", "bob-phone", ContentType.TEXT, BOB_V2, t1),
                [verdict("bob", "bob-phone"), get("r2", "bob")],
            ),
            (
                "now the server serves version 2: accepted",
                answer("r2", BOB_V2, t1),
                [
                    store("bob", record(BOB_V2, checked_at=t1, known=(BOB_V1,))),
                    notice(
                        "bob",
                        "devices_changed",
                        reason="freeze",
                        version=2,
                        added=["bob-laptop"],
                        removed=[],
                    ),
                ],
            ),
            (
                "an older stamp than the list accepted: nothing to do",
                content("bob", "bob-phone", ContentType.TEXT, BOB_V1, t1),
                [verdict("bob", "bob-phone")],
            ),
        ],
    )


def list_stale_refetched() -> dict[str, Any]:
    return scenario(
        "A cached list is used for 5 minutes after the server last served it, then fetched again before use (both clients, one rule).",
        state(BOB_V1_KNOWN),
        [
            ("exactly 5 minutes old: still fresh", wanted("bob", T0 + MAX_AGE), []),
            ("older than 5 minutes: fetch", wanted("bob", T0 + MAX_AGE + 1), [get("r1", "bob")]),
            (
                "unchanged: stored as checked now",
                answer("r1", BOB_V1, T0 + MAX_AGE + 1),
                [store("bob", record(BOB_V1, checked_at=T0 + MAX_AGE + 1))],
            ),
            ("fresh again", wanted("bob", T0 + 2 * MAX_AGE), []),
            ("the own list is due too", wanted("alice", T0 + MAX_AGE + 1), [get("r2", "alice")]),
        ],
    )


def device_list_notice_from_contact() -> dict[str, Any]:
    t1 = T0 + 1000
    return scenario(
        "A device-list notice is an own-devices content: from a contact it is refused and makes no fetch by itself; its signed stamp is checked as every content's is, so a real change of the contact's list is still fetched and verified.",
        state(BOB_V1_KNOWN),
        [
            (
                "a notice from bob's phone, stamped with the list known here: refused, nothing fetched",
                content("bob", "bob-phone", ContentType.DEVICE_LIST_NOTICE, BOB_V1, t1),
                [verdict("bob", "bob-phone", refuse=True)],
            ),
            (
                "a notice from bob stamped with list 2: refused, and the stamp makes the freeze fetch",
                content("bob", "bob-phone", ContentType.DEVICE_LIST_NOTICE, BOB_V2, t1),
                [verdict("bob", "bob-phone", refuse=True), get("r1", "bob")],
            ),
            (
                "list 2 verifies: accepted",
                answer("r1", BOB_V2, t1),
                [
                    store("bob", record(BOB_V2, checked_at=t1, known=(BOB_V1,))),
                    notice(
                        "bob",
                        "devices_changed",
                        reason="freeze",
                        version=2,
                        added=["bob-laptop"],
                        removed=[],
                    ),
                ],
            ),
            (
                "a sent transcript from a contact: refused",
                content("bob", "bob-laptop", ContentType.SENT_TRANSCRIPT, BOB_V2, t1),
                [verdict("bob", "bob-laptop", refuse=True)],
            ),
            (
                "a history bundle key from a contact: refused",
                content("bob", "bob-laptop", ContentType.HISTORY_BUNDLE_KEY, BOB_V2, t1),
                [verdict("bob", "bob-laptop", refuse=True)],
            ),
        ],
    )


def device_list_notice_from_own_device() -> dict[str, Any]:
    t1 = T0 + 1000
    return scenario(
        "A device-list notice from another own device is accepted: the own list is fetched and verified under the own account key (the notice's body is not trusted).",
        state(BOB_V1_KNOWN),
        [
            (
                "from alice-laptop, listed: accepted, the own list fetched",
                content("alice", "alice-laptop", ContentType.DEVICE_LIST_NOTICE, ALICE_V2, t1),
                [verdict("alice", "alice-laptop"), get("r1", "alice")],
            ),
            (
                "the own list version 3 verifies",
                answer("r1", ALICE_V3, t1),
                [
                    store("alice", record(ALICE_V3, checked_at=t1, known=(ALICE_V2,))),
                    notice(
                        "alice",
                        "devices_changed",
                        reason="notice",
                        version=3,
                        added=[],
                        removed=["alice-laptop"],
                    ),
                ],
            ),
            (
                "alice-laptop is no longer listed: its notice is refused",
                content("alice", "alice-laptop", ContentType.DEVICE_LIST_NOTICE, ALICE_V3, t1),
                [verdict("alice", "alice-laptop", refuse=True)],
            ),
            (
                "a sent transcript from the own account's unlisted device: refused",
                content("alice", "alice-tablet", ContentType.SENT_TRANSCRIPT, ALICE_V3, t1),
                [verdict("alice", "alice-tablet", refuse=True)],
            ),
            (
                "a notice stamped with a newer own list: one fetch for both reasons",
                content(
                    "alice",
                    "alice-phone",
                    ContentType.DEVICE_LIST_NOTICE,
                    signed("alice", ALICE, 4, {"alice-phone": ALICE}),
                    t1,
                ),
                [verdict("alice", "alice-phone"), get("r2", "alice")],
            ),
        ],
    )


def list_fetch_triggers() -> dict[str, Any]:
    t1 = T0 + 1000
    return scenario(
        "Other reasons to fetch: an envelope from a device the cached list does not name, and the server's devices_changed frame (the own list).",
        state(BOB_V1_KNOWN),
        [
            (
                "an envelope from bob-phone, listed: nothing to fetch",
                {"type": "sender_seen", "sender": "bob", "sender_device": "bob-phone", "now": t1},
                [],
            ),
            (
                "an envelope from bob-laptop, not listed here: fetch",
                {"type": "sender_seen", "sender": "bob", "sender_device": "bob-laptop", "now": t1},
                [get("r1", "bob")],
            ),
            (
                "an envelope from carol, no list yet: fetch",
                {
                    "type": "sender_seen",
                    "sender": "carol",
                    "sender_device": "carol-phone",
                    "now": t1,
                },
                [get("r2", "carol")],
            ),
            (
                "devices_changed: the own list",
                {"type": "frame_received", "frame": {"type": "devices_changed"}, "now": t1},
                [get("r3", "alice")],
            ),
            (
                "another frame: nothing here",
                {"type": "frame_received", "frame": {"type": "prekeys_low"}, "now": t1},
                [],
            ),
            (
                "an account id is escaped in the path",
                wanted("a/b c", t1),
                [{**get("r4", "x"), "path": "/api/accounts/a%2Fb%20c/device-list"}],
            ),
        ],
    )


# ---------------------------------------------------------------- the link URL


def link_url_calls() -> dict[str, Any]:
    origin = "https://parley.example:8443"
    rng = TestRng(seed("scenario link url"))
    code = {"link_id": "Lk_0-9aZ", "identity_key": b64(rng(32)), "ephemeral_key": b64(rng(32))}
    url = (
        f"{origin}/link/approve#v1.{code['link_id']}.{code['identity_key']}.{code['ephemeral_key']}"
    )
    key43 = code["identity_key"]
    refused = {
        "another origin": url.replace(origin, "https://evil.example"),
        "another path": url.replace("/link/approve#", "/link/approve/#"),
        "version 2": url.replace("#v1.", "#v2."),
        "a short key": url.replace(f".{key43}.", f".{key43[:-1]}."),
        "a fifth part": url + ".AAAA",
        "a link id over 64 characters": url.replace(code["link_id"], "a" * 65),
        "a key with trailing bits set": url.replace(
            f".{key43}.", f".{key43[:-1]}{'B' if key43[-1] != 'B' else 'C'}."
        ),
        "a padded key": url.replace(f".{key43}.", f".{key43}=."),
        "no fragment": f"{origin}/link/approve",
    }
    calls = [
        {"call": "link_url", "args": {"origin": origin, **code}, "returns": url},
        {"call": "parse_link_url", "args": {"url": url, "origin": origin}, "returns": code},
        {
            "call": "parse_link_url",
            "args": {"url": url.replace("Lk_0-9aZ", "x"), "origin": origin},
            "returns": {**code, "link_id": "x"},
        },
    ]
    calls += [
        {
            "note": f"refused: {what}",
            "call": "parse_link_url",
            "args": {"url": bad, "origin": origin},
            "error": "MalformedMessage",
        }
        for what, bad in refused.items()
    ]
    calls.append(
        {
            "note": "a key of 31 bytes cannot be put in a URL",
            "call": "link_url",
            "args": {"origin": origin, **code, "identity_key": b64(rng(31))},
            "error": "InvalidKey",
        }
    )
    return {
        "description": "The link URL a new device shows as a QR code: built and parsed by one function per language; anything but the exact form is refused.",
        "seeds": {"keys": "scenario link url"},
        "steps": calls,
    }


def build_scenarios() -> dict[str, dict[str, Any]]:
    return {
        "list_accepted.json": list_accepted(),
        "list_rollback_refused.json": list_rollback_refused(),
        "list_key_change_refused.json": list_key_change_refused(),
        "list_injected_device_refused.json": list_injected_device_refused(),
        "list_withheld_flagged.json": list_withheld_flagged(),
        "list_stale_refetched.json": list_stale_refetched(),
        "device_list_notice_from_contact.json": device_list_notice_from_contact(),
        "device_list_notice_from_own_device.json": device_list_notice_from_own_device(),
        "list_fetch_triggers.json": list_fetch_triggers(),
        "link_url.json": link_url_calls(),
    }


def render(data: Any) -> str:
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> None:
    for name, data in build_scenarios().items():
        (SCENARIO_DIR / name).write_text(render(data), encoding="utf-8")


if __name__ == "__main__":
    main()
