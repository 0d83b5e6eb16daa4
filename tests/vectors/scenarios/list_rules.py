"""Scenarios of accepting a device list (docs/protocol.md section 22.4)."""

from __future__ import annotations

from typing import Any

from protocol.content import ContentType
from protocol.devicelist import DeviceEntry, DeviceList, sign_device, sign_device_list
from tests.vectors.scenarios.builders import (
    BOB,
    BOB_KNOWN,
    BOB_LAPTOP,
    BOB_V1,
    BOB_V1_KNOWN,
    BOB_V2,
    BOB_V3_TABLET,
    IMPOSTOR,
    INTRUDER,
    OWN,
    T0,
    answer,
    b64,
    content,
    entry,
    get,
    identity,
    notice,
    record,
    scenario,
    signed,
    state,
    store,
    verdict,
    wanted,
)

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


def list_first_of_synced_contact() -> dict[str, Any]:
    t1 = T0 + 1000
    carol_by_impostor = signed("carol", IMPOSTOR, 1, {"carol-phone": IMPOSTOR})
    return scenario(
        "A contact another own device added (its key in the synced contact record) is pinned to that key, not to whatever the server serves first: a first list signed by another key is a changed security code.",
        {
            **state(OWN),
            "contact_keys": {"bob": b64(BOB.public), "carol": b64(INTRUDER.public)},
        },
        [
            ("no list of bob yet: fetch it", wanted("bob", t1), [get("r1", "bob")]),
            (
                "signed by the key the other device verified: stored",
                answer("r1", BOB_V1, t1),
                [store("bob", record(BOB_V1, checked_at=t1))],
            ),
            ("no list of carol yet: fetch it", wanted("carol", t1), [get("r2", "carol")]),
            (
                "signed by another key: the security code changed, nothing stored",
                answer("r2", carol_by_impostor, t1),
                [
                    notice(
                        "carol",
                        "security_code_changed",
                        reason="missing",
                        account_key=b64(IMPOSTOR.public),
                    )
                ],
            ),
            (
                "bob's newer list: checked against the key pinned in the record",
                wanted("bob", t1 + 10, refresh=True),
                [get("r3", "bob")],
            ),
            (
                "version 2 under the same key: stored, the change told",
                answer("r3", BOB_V2, t1 + 10),
                [
                    store("bob", record(BOB_V2, checked_at=t1 + 10, known=(BOB_V1,))),
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
