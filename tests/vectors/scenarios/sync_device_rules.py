"""Scenarios of the sync machine's rules about own devices (docs/protocol.md section 22.8):
each device's own last use, written at most every LAST_USE_EVERY_MS; a re-key when an own
device leaves the list (or is suspended), and a losing rotation that takes the winner's key
instead of rotating again; and a write that failed (a device offline writes its last use on
every load) is not tried again until another event. Nothing here imports the engine."""

from __future__ import annotations

from typing import Any

from protocol.accountstate import build_snapshot
from protocol.rng import TestRng
from protocol.syncentry import Mutation, new_sync_key
from tests.vectors.scenarios.builders import b64
from tests.vectors.scenarios.sync_rules import (
    K1,
    T1,
    T2,
    T3,
    Log,
    announced,
    answered,
    base_log,
    changed,
    conflict,
    contact,
    event_seed,
    get,
    key_json,
    listing,
    post,
    refused,
    shared,
    simple,
    stored,
    sync_scenario,
    sync_state,
)

MINUTE = 60 * 1000
EVERY = 10 * MINUTE  # LAST_USE_EVERY_MS


def last_use(device: str, at: int) -> Mutation:
    return Mutation("devices", (device,), {"last_used": at}, at, device)


def listed(rng_name: str, now: int, devices: list[str], suspended: list[str]) -> dict[str, Any]:
    return simple("sync_devices_listed", rng_name, now, listed=devices, suspended=suspended)


def with_devices(state: dict[str, Any], devices: list[str]) -> dict[str, Any]:
    return {**state, "devices": sorted(devices)}


def last_use_throttled() -> dict[str, Any]:
    log = base_log()
    start = log.state
    first = log.patch(K1, [last_use("alice-laptop", T1)], "load")
    later = T1 + EVERY
    second = log.patch(K1, [last_use("alice-laptop", later)], "ten minutes")
    return sync_scenario(
        "Each device writes its own last use (devices [device id] {last_used}) into the synced state when it is used: on load, then at most once every 10 minutes (LAST_USE_EVERY_MS) however often the adapter says it is in use; a last use waiting to be written counts as written.",
        sync_state("alice-laptop", start),
        [
            (
                "the page loads: no last use of this device yet, so it is written",
                simple("sync_device_used", "load", T1),
                [stored(start, pending=1), post("s1", first)],
            ),
            (
                "201: and this device's checkpoint goes to the others",
                answered("s1", 201, {"version": 2}, "stored", T1),
                [
                    stored(first.state),
                    changed(first.state, ("devices", "alice-laptop")),
                    announced(first.state),
                ],
            ),
            (
                "in use 9 minutes later: the synced last use is recent enough, nothing written",
                simple("sync_device_used", "nine minutes", T1 + 9 * MINUTE),
                [],
            ),
            (
                "in use 10 minutes after the last write: written again",
                simple("sync_device_used", "ten minutes", later),
                [stored(first.state, pending=1), post("s2", second)],
            ),
            (
                "another tab at the same moment, the write still in flight: the waiting one counts",
                simple("sync_device_used", "other tab", later + 1000),
                [],
            ),
            (
                "201: and the checkpoint",
                answered("s2", 201, {"version": 3}, "stored again", later),
                [
                    stored(second.state),
                    changed(second.state, ("devices", "alice-laptop")),
                    announced(second.state),
                ],
            ),
        ],
    )


DEVICES = ["alice-laptop", "alice-phone", "alice-tablet"]


def device_left_rekeyed() -> dict[str, Any]:
    log = base_log()
    log.patch(K1, [contact("bob", T1, "alice-phone")], "bob")
    start = log.state
    rng = TestRng(event_seed("nothing missed"))
    second = new_sync_key(rng, since_version=3)
    rotated = build_snapshot(start, version=3, key=second, rng=rng)
    return sync_scenario(
        "A device that sees an own device leave re-keys: its own list, verified, names the devices, and the server reports the logged-out ones (suspended); one that was listed and not suspended before, and is not now, holds the current key. The device reads to the current version V, writes the state under a new key in force from V+1, and sends the key on 201. The first list only sets what later ones are compared with; the primary re-signing without a device already counted as gone changes nothing.",
        sync_state("alice-laptop", start),
        [
            (
                "the first list this device sees: remembered, nothing else",
                listed("first list", T1, DEVICES, []),
                [stored(start)],
            ),
            ("the same list again: nothing", listed("same list", T1, DEVICES, []), []),
            (
                "the tablet logged itself out (the server suspends it): read to the current version",
                listed("tablet out", T2, DEVICES, ["alice-tablet"]),
                [stored(start), get("s1", 2)],
            ),
            (
                "nothing missed: the state under a new key, as version 3",
                answered("s1", 200, listing([], 2), "nothing missed", T2),
                [stored(start), post("s2", rotated)],
            ),
            (
                "201: the new key goes to the remaining devices",
                answered("s2", 201, {"version": 3}, "rotated", T2),
                [stored(rotated.state, keys=(K1, second)), shared(second, rotated.state)],
            ),
            (
                "the primary re-signs the list without the tablet: already re-keyed, nothing",
                listed("re-signed", T3, ["alice-laptop", "alice-phone"], []),
                [],
            ),
        ],
    )


def rotation_race_settled() -> dict[str, Any]:
    """The laptop and the phone both see the tablet go and both rotate; the phone's snapshot
    is stored first. The laptop's key is dropped, it waits for the phone's, and then it does
    not rotate again: a key newer than the state it asked on is in force."""
    log = base_log()
    log.patch(K1, [contact("bob", T1, "alice-phone")], "bob")
    start = log.state
    rng = TestRng(event_seed("nothing missed"))
    mine = new_sync_key(rng, since_version=3)
    lost = build_snapshot(start, version=3, key=mine, rng=rng)
    phones = new_sync_key(TestRng(event_seed("the phone's rotation")), since_version=3)
    winner = Log(state=start)
    won = winner.snapshot(phones, "the phone's snapshot")
    body = {**key_json(phones), "version": 3, "chain": b64(won.state.chain)}
    empty_note = (
        "the change listed at version 3 is under a sync key this device does not hold (yet)"
    )
    return sync_scenario(
        "Two devices see an own device leave and rotate at once: the compare-and-swap stores one snapshot. The other device drops its key, waits for the winner's (sync_key_awaited), and once it holds it and has read the log, does not rotate again: a key in force after the version it had read when it asked is the rotation it wanted. No loop, and no device is left without the key.",
        with_devices(sync_state("alice-laptop", start), DEVICES),
        [
            (
                "the tablet logged itself out: read to the current version",
                listed("tablet out", T2, DEVICES, ["alice-tablet"]),
                [stored(start), get("s1", 2)],
            ),
            (
                "nothing missed: the laptop's rotation, as version 3",
                answered("s1", 200, listing([], 2), "nothing missed", T2),
                [stored(start), post("s2", lost)],
            ),
            (
                "409: the phone's rotation was stored at version 3 first",
                answered("s2", 409, conflict("state_version_conflict", 3), "lost", T2),
                [stored(start), get("s3", 2)],
            ),
            (
                "version 3 is under the phone's new key: the laptop's is dropped, it waits",
                answered("s3", 200, listing([won], 3), "phone's key unknown", T2),
                [stored(start, refused="SyncKeyUnknown"), refused("SyncKeyUnknown", empty_note)],
            ),
            (
                "the phone's key arrives over the pairwise session: read again",
                simple("sync_key_received", "key", T3, sender_device="alice-phone", body=body),
                [stored(start, keys=(K1, phones), refused="SyncKeyUnknown"), get("s4", 2)],
            ),
            (
                "the log applies under the phone's key; no second rotation (the read moved it: its checkpoint)",
                answered("s4", 200, listing([won], 3), "applied", T3),
                [stored(won.state, keys=(K1, phones)), announced(won.state)],
            ),
        ],
    )


def write_failed_waits() -> dict[str, Any]:
    log = base_log()
    start = log.state
    use = last_use("alice-laptop", T1)
    first_try = Log(state=start).patch(K1, [use], "load")
    again = log.patch(K1, [use], "online again")
    failed = {
        "type": "notice",
        "account_id": "alice",
        "code": "sync_write_failed",
        "data": {"status": 0, "code": "http_0"},
    }
    return sync_scenario(
        "A write that gets no answer (the device is offline), a 5xx or a limit keeps its changes pending and is not tried again at once (an offline device would write in a loop); the next event from outside (a reconnect, a doorbell, a change, a minute of use) tries again.",
        sync_state("alice-laptop", start),
        [
            (
                "the page loads offline: its last use is due",
                simple("sync_device_used", "load", T1),
                [stored(start, pending=1), post("s1", first_try)],
            ),
            (
                "no answer: the change stays, nothing is sent again now",
                answered("s1", 0, None, "no answer", T1),
                [stored(start, pending=1), failed],
            ),
            (
                "the socket is back: read, then write again",
                simple("sync_fetch_wanted", "reconnected", T2, version=None),
                [get("s2", 1)],
            ),
            (
                "nothing missed: the change is written",
                answered("s2", 200, listing([], 1), "online again", T2),
                [stored(start, pending=1), post("s3", again)],
            ),
        ],
    )


SCENARIOS = {
    "sync_last_use_throttled.json": last_use_throttled,
    "sync_device_left_rekeyed.json": device_left_rekeyed,
    "sync_rotation_race_settled.json": rotation_race_settled,
    "sync_write_failed_waits.json": write_failed_waits,
}
