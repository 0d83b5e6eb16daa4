"""Scenarios of fetching lists and of which contents a device accepts (section 22.4)."""

from __future__ import annotations

from typing import Any

from protocol.content import ContentType
from tests.vectors.scenarios.builders import (
    ALICE,
    ALICE_V2,
    ALICE_V3,
    BOB_V1,
    BOB_V1_KNOWN,
    BOB_V2,
    MAX_AGE,
    T0,
    answer,
    content,
    get,
    notice,
    record,
    scenario,
    signed,
    state,
    store,
    verdict,
    wanted,
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


def sync_key_own_devices_only() -> dict[str, Any]:
    t1 = T0 + 1000
    return scenario(
        "The account sync key and sync checkpoints (section 23.2, 23.8) travel only between own devices: from a contact's device they are refused.",
        state(BOB_V1_KNOWN),
        [
            (
                "a sync key from bob's phone: refused",
                content("bob", "bob-phone", ContentType.ACCOUNT_SYNC_KEY, BOB_V1, t1),
                [verdict("bob", "bob-phone", refuse=True)],
            ),
            (
                "a sync key from alice-laptop, listed: accepted",
                content("alice", "alice-laptop", ContentType.ACCOUNT_SYNC_KEY, ALICE_V2, t1),
                [verdict("alice", "alice-laptop")],
            ),
            (
                "a sync checkpoint from bob's phone: refused",
                content("bob", "bob-phone", ContentType.ACCOUNT_SYNC_CHECKPOINT, BOB_V1, t1),
                [verdict("bob", "bob-phone", refuse=True)],
            ),
            (
                "a sync checkpoint from alice-laptop: accepted",
                content("alice", "alice-laptop", ContentType.ACCOUNT_SYNC_CHECKPOINT, ALICE_V2, t1),
                [verdict("alice", "alice-laptop")],
            ),
            (
                "a sync key from the own account's unlisted device: refused",
                content("alice", "alice-tablet", ContentType.ACCOUNT_SYNC_KEY, ALICE_V2, t1),
                [verdict("alice", "alice-tablet", refuse=True)],
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
