"""Scenarios of planning a send and the retry after `mismatched_devices` (docs/protocol.md
section 22.4)."""

from __future__ import annotations

from typing import Any

from protocol.devicelist import DeviceEntry, DeviceList, sign_device
from tests.vectors.scenarios.builders import (
    ALICE_V2,
    ALICE_V3,
    BOB,
    BOB_KNOWN,
    BOB_V1,
    BOB_V1_KNOWN,
    BOB_V2,
    BOB_V3_TABLET,
    INTRUDER,
    MAX_AGE,
    OWN,
    T0,
    answer,
    get,
    notice,
    record,
    scenario,
    state,
    store,
)


def send(envelope_id: str, recipient: str, now: int) -> dict[str, Any]:
    return {"type": "send_wanted", "envelope_id": envelope_id, "recipient": recipient, "now": now}


def plan(
    envelope_id: str, recipient: str, devices: list[str], transcripts: list[str], attempt: int = 1
) -> dict[str, Any]:
    return {
        "type": "send_plan",
        "envelope_id": envelope_id,
        "recipient": recipient,
        "devices": sorted(devices),  # in list order: by device id (section 4.1)
        "transcripts": sorted(transcripts),
        "attempt": attempt,
    }


def frame(data: dict[str, Any], now: int) -> dict[str, Any]:
    return {"type": "frame_received", "frame": data, "now": now}


def accepted(envelope_id: str, now: int) -> dict[str, Any]:
    return frame({"type": "accepted", "v": 1, "id": envelope_id}, now)


def mismatched(
    envelope_id: str,
    now: int,
    *,
    missing: tuple[str, ...] = (),
    extra: tuple[str, ...] = (),
    stale: tuple[str, ...] = (),
) -> dict[str, Any]:
    data = {"missing": list(missing), "extra": list(extra), "stale": list(stale)}
    error = {
        "type": "error",
        "v": 1,
        "code": "mismatched_devices",
        "message": "the targets are not the recipient's devices",
        "ref": envelope_id,
        "data": data,
    }
    return frame(error, now)


def refused(recipient: str, envelope_id: str, reason: str, **data: Any) -> dict[str, Any]:
    return notice(recipient, "send_refused", envelope_id=envelope_id, reason=reason, **data)


def send_planned() -> dict[str, Any]:
    t1, t2 = T0 + 1000, T0 + MAX_AGE + 1
    return scenario(
        "A send to a contact: the content for each device of the contact's verified list, a sent transcript for each other own device; stale lists are fetched and verified first, and a send whose list cannot be had is refused.",
        state(BOB_KNOWN),
        [
            (
                "bob has 2 devices, alice 1 other: both lists fresh, planned at once",
                send("e1", "bob", t1),
                [plan("e1", "bob", ["bob-phone", "bob-laptop"], ["alice-laptop"])],
            ),
            ("the server accepted e1: the send is done", accepted("e1", t1), []),
            (
                "5 minutes later both lists are stale: fetch them before planning",
                send("e2", "bob", t2),
                [get("r1", "alice"), get("r2", "bob")],
            ),
            (
                "the own list verifies: still waiting for bob's",
                answer("r1", ALICE_V2, t2),
                [store("alice", record(ALICE_V2, checked_at=t2))],
            ),
            (
                "bob's list verifies: planned",
                answer("r2", BOB_V2, t2),
                [
                    store("bob", record(BOB_V2, checked_at=t2, known=(BOB_V1,))),
                    plan("e2", "bob", ["bob-phone", "bob-laptop"], ["alice-laptop"]),
                ],
            ),
            (
                "no list of carol yet: fetch it",
                send("e3", "carol", t2),
                [get("r3", "carol")],
            ),
            (
                "the server fails: no list, no send",
                {
                    "type": "http_answered",
                    "request_id": "r3",
                    "status": 404,
                    "body": {
                        "error": {"code": "not_found", "message": "no such account", "data": {}}
                    },
                    "now": t2,
                },
                [
                    notice(
                        "carol", "list_unavailable", reason="missing", status=404, code="not_found"
                    ),
                    refused("carol", "e3", "list_unavailable"),
                ],
            ),
        ],
    )


def send_suspended_excluded() -> dict[str, Any]:
    t1 = T0 + 1000
    lists = {
        **OWN,
        "bob": record(BOB_V2, checked_at=T0, known=(BOB_V1,), suspended=("bob-laptop",)),
    }
    return scenario(
        "Alice's laptop sends. A device the server reports logged out (suspended) is left out of a send until a list without it is signed; a content to the own account goes to the other own devices only; a device no longer in its own list sends nothing.",
        {**state(lists), "device_id": "alice-laptop"},
        [
            (
                "bob-laptop is suspended: only bob-phone gets the content",
                send("e1", "bob", t1),
                [plan("e1", "bob", ["bob-phone"], ["alice-phone"])],
            ),
            (
                "to the own account (a history key): the other own devices, no transcripts",
                send("e2", "alice", t1),
                [plan("e2", "alice", ["alice-phone"], [])],
            ),
            (
                "refresh the own list",
                {"type": "list_wanted", "account_id": "alice", "refresh": True, "now": t1},
                [get("r1", "alice")],
            ),
            (
                "version 3 no longer lists this device",
                answer("r1", ALICE_V3, t1),
                [
                    store("alice", record(ALICE_V3, checked_at=t1, known=(ALICE_V2,))),
                    notice(
                        "alice",
                        "devices_changed",
                        reason="refresh",
                        version=3,
                        added=[],
                        removed=["alice-laptop"],
                    ),
                ],
            ),
            (
                "a send from a removed device is refused",
                send("e3", "bob", t1),
                [refused("bob", "e3", "device_removed")],
            ),
        ],
    )


def send_mismatched_missing() -> dict[str, Any]:
    t1, t2 = T0 + 1000, T0 + 2000
    return scenario(
        "mismatched_devices naming a missing device: both lists are fetched and verified again, and the send re-planned with the newly listed device.",
        state(BOB_V1_KNOWN),
        [
            (
                "bob has one device in the cached list",
                send("e1", "bob", t1),
                [plan("e1", "bob", ["bob-phone"], ["alice-laptop"])],
            ),
            (
                "the server says bob-laptop is missing: refetch both lists",
                mismatched("e1", t2, missing=("bob-laptop",)),
                [get("r1", "alice"), get("r2", "bob")],
            ),
            (
                "the own list, unchanged",
                answer("r1", ALICE_V2, t2),
                [store("alice", record(ALICE_V2, checked_at=t2))],
            ),
            (
                "bob's version 2 verifies: re-planned with bob-laptop",
                answer("r2", BOB_V2, t2),
                [
                    store("bob", record(BOB_V2, checked_at=t2, known=(BOB_V1,))),
                    notice(
                        "bob",
                        "devices_changed",
                        reason="refresh",
                        version=2,
                        added=["bob-laptop"],
                        removed=[],
                    ),
                    plan("e1", "bob", ["bob-phone", "bob-laptop"], ["alice-laptop"], attempt=2),
                ],
            ),
            ("accepted", accepted("e1", t2), []),
            ("an answer to a send already done changes nothing", mismatched("e1", t2), []),
        ],
    )


def send_mismatched_extra_stale() -> dict[str, Any]:
    t1, t2, t3 = T0 + 1000, T0 + 2000, T0 + 3000
    return scenario(
        "mismatched_devices naming an extra device (removed from the list) and a stale one (logged out, still signed): the re-plan follows the newly verified list, and a stale device is left out, never added.",
        state(BOB_KNOWN),
        [
            (
                "planned to bob's two devices",
                send("e1", "bob", t1),
                [plan("e1", "bob", ["bob-phone", "bob-laptop"], ["alice-laptop"])],
            ),
            (
                "bob-laptop is extra: refetch",
                mismatched("e1", t2, extra=("bob-laptop",), missing=("bob-tablet",)),
                [get("r1", "alice"), get("r2", "bob")],
            ),
            (
                "own list",
                answer("r1", ALICE_V2, t2),
                [store("alice", record(ALICE_V2, checked_at=t2))],
            ),
            (
                "version 3 swaps bob-laptop for bob-tablet: re-planned",
                answer("r2", BOB_V3_TABLET, t2),
                [
                    store("bob", record(BOB_V3_TABLET, checked_at=t2, known=(BOB_V1, BOB_V2))),
                    notice(
                        "bob",
                        "devices_changed",
                        reason="refresh",
                        version=3,
                        added=["bob-tablet"],
                        removed=["bob-laptop"],
                    ),
                    plan("e1", "bob", ["bob-phone", "bob-tablet"], ["alice-laptop"], attempt=2),
                ],
            ),
            (
                "bob-tablet and an unknown id are stale: refetch",
                mismatched("e1", t3, stale=("bob-tablet", "zz-unknown")),
                [get("r3", "alice"), get("r4", "bob")],
            ),
            (
                "own list",
                answer("r3", ALICE_V2, t3),
                [store("alice", record(ALICE_V2, checked_at=t3))],
            ),
            (
                "the same list again: re-planned without the stale device",
                answer("r4", BOB_V3_TABLET, t3),
                [
                    store("bob", record(BOB_V3_TABLET, checked_at=t3, known=(BOB_V1, BOB_V2))),
                    plan("e1", "bob", ["bob-phone"], ["alice-laptop"], attempt=3),
                ],
            ),
        ],
    )


def send_mismatched_cap() -> dict[str, Any]:
    t1 = T0 + 1000
    steps: list[tuple[str, dict[str, Any], list[dict[str, Any]]]] = [
        (
            "planned",
            send("e1", "bob", t1),
            [plan("e1", "bob", ["bob-phone", "bob-laptop"], ["alice-laptop"])],
        )
    ]
    request = 1
    for attempt in (2, 3, 4):
        now = t1 + attempt
        own, theirs = f"r{request}", f"r{request + 1}"
        request += 2
        steps += [
            (
                f"mismatched again (retry {attempt - 1} of 3): refetch",
                mismatched("e1", now, extra=("bob-laptop",)),
                [get(own, "alice"), get(theirs, "bob")],
            ),
            (
                "own list",
                answer(own, ALICE_V2, now),
                [store("alice", record(ALICE_V2, checked_at=now))],
            ),
            (
                "bob's list, unchanged: the same plan again",
                answer(theirs, BOB_V2, now),
                [
                    store("bob", record(BOB_V2, checked_at=now, known=(BOB_V1,))),
                    plan(
                        "e1", "bob", ["bob-phone", "bob-laptop"], ["alice-laptop"], attempt=attempt
                    ),
                ],
            ),
        ]
    steps += [
        (
            "a fourth mismatched_devices: refused, nothing fetched",
            mismatched("e1", t1 + 9, extra=("bob-laptop",)),
            [
                refused(
                    "bob",
                    "e1",
                    "mismatched_devices",
                    attempts=4,
                    missing=[],
                    extra=["bob-laptop"],
                    stale=[],
                )
            ],
        ),
        ("the send is forgotten: a late answer changes nothing", mismatched("e1", t1 + 9), []),
    ]
    return scenario(
        "The server keeps refusing the devices of a verified list: at most 3 re-plans (MAX_MISMATCH_RETRIES), each from freshly verified lists, then the send is refused.",
        state(BOB_KNOWN),
        steps,
    )


def send_mismatched_untrusted() -> dict[str, Any]:
    t1, t2 = T0 + 1000, T0 + 2000
    injected = BOB_V1.to_dict()
    intruder = DeviceEntry(
        "zz-intruder",
        INTRUDER.public,
        T0 + 5,
        sign_device(INTRUDER, account_id="bob", account_key=BOB.public),
    )
    injected["devices"].append(
        DeviceList("bob", BOB.public, 1, 1, (intruder,)).to_dict()["devices"][0]
    )
    injected["version"] = 2
    return scenario(
        "The server cannot add a target: a device named as missing is sent to only once a verified list holds it; a list with the device injected is refused, and the send with it.",
        state(BOB_V1_KNOWN),
        [
            (
                "planned to bob-phone",
                send("e1", "bob", t1),
                [plan("e1", "bob", ["bob-phone"], ["alice-laptop"])],
            ),
            (
                "the server says zz-intruder is missing",
                mismatched("e1", t1, missing=("zz-intruder",)),
                [get("r1", "alice"), get("r2", "bob")],
            ),
            (
                "own list",
                answer("r1", ALICE_V2, t1),
                [store("alice", record(ALICE_V2, checked_at=t1))],
            ),
            (
                "bob's verified list has no zz-intruder: the plan stays without it",
                answer("r2", BOB_V1, t1),
                [
                    store("bob", record(BOB_V1, checked_at=t1)),
                    plan("e1", "bob", ["bob-phone"], ["alice-laptop"], attempt=2),
                ],
            ),
            (
                "missing again",
                mismatched("e1", t2, missing=("zz-intruder",)),
                [get("r3", "alice"), get("r4", "bob")],
            ),
            (
                "own list",
                answer("r3", ALICE_V2, t2),
                [store("alice", record(ALICE_V2, checked_at=t2))],
            ),
            (
                "now the server serves a list with zz-intruder appended after signing: refused, and the send",
                answer("r4", injected, t2),
                [
                    notice("bob", "list_refused", reason="refresh", error="InvalidSignature"),
                    refused("bob", "e1", "list_refused"),
                ],
            ),
        ],
    )
